"""`CompressionReport`: what compression did to a model, as a record, then rendered.

`build_report` reads the kernels of any Keras model (an `ADMMModel` from
`tfadmm.wrap` or a plain model) and records, per kernel, its weights,
non-zeros, distinct values and storage cost; the renderers (`render_table`,
`render_markdown`, `to_json`) turn the record into text. Nothing here prints.

Conventions (ALGORITHM.md §6):

- **pruning rate** = total weights of the compressed kernels / their non-zero
  weights (biases excluded): 430,500 / 1,750 = 246x on LeNet-5. A kernel is
  *compressed* when a `KernelState` of the wrapped model holds it; in a plain
  model, when it has zeros or few enough distinct values to be stored as
  codes.
- **storage**: a kernel's compressed bytes are
  `ceil((entries * bits + codebook * 32 + index bits) / 8)`, the cheapest of
  the layouts in `tfadmm.encoding` (values as floats or as codes into a
  codebook of its distinct values, or into one codebook per output channel
  for per-channel quantization; index none, a bitmask of one bit per weight,
  or relative indices of any width 1-16 bits with filler entries for long
  gaps). This is the theoretical minimum that an export can approach.
  The storage ratio is dense bytes / compressed bytes over every compressible
  kernel; other parameters (biases, normalization) are counted dense, apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tfadmm import encoding
from tfadmm.admm_model import ADMMModel
from tfadmm.compressible import find_compressible_layers
from tfadmm.errors import TfadmmError

_STAGE_KEYS = ("stage", "accuracy_before", "accuracy_after", "start_val_accuracy", "chosen")


@dataclass(frozen=True)
class KernelRow:
    """One compressible kernel.

    Attributes:
        layer: the layer's name.
        kernel: the kernel's name in the layer (`"kernel"`, ...).
        shape: the kernel's shape.
        weights: its number of weights.
        nonzeros: its non-zero weights.
        distinct_values: distinct values, zero included (a ternary kernel: 3).
        bits: bits per stored value (32 for floats, the code width otherwise).
        index: the cheapest index: `"none"`, `"bitmask"` or `"relative-<bits>"`.
        dense_bytes: bytes of the dense kernel.
        compressed_bytes: bytes of the cheapest encoding (module docstring).
        compressed: whether the kernel counts in the pruning rate.
    """

    layer: str
    kernel: str
    shape: tuple
    weights: int
    nonzeros: int
    distinct_values: int
    bits: int
    index: str
    dense_bytes: int
    compressed_bytes: int
    compressed: bool

    def with_shape(self, shape):
        """A copy with `shape` as a tuple (JSON gives lists)."""
        return dataclasses.replace(self, shape=tuple(shape))

    @property
    def sparsity(self):
        """The fraction of zero weights."""
        return 1.0 - self.nonzeros / self.weights if self.weights else 0.0

    @property
    def pruning_rate(self):
        """weights / non-zeros (inf for an all-zero kernel)."""
        return _ratio(self.weights, self.nonzeros)


@dataclass(frozen=True)
class StageAccuracy:
    """The accuracy before and after one compression stage (given by the caller).

    `start_val_accuracy`: the validation accuracy of the stage's hard-mapped starting
    point (post-training quantization, or one-shot magnitude pruning); `chosen`: the
    candidate the stage ended on (see `tfadmm.run_stage`).
    """

    stage: str
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    start_val_accuracy: float | None = None
    chosen: str | None = None


@dataclass(frozen=True)
class CompressionReport:
    """The record of a compressed model: kernels, other parameters, accuracies.

    Attributes:
        model_name: the model's name.
        rows: one `KernelRow` per compressible kernel, in model order.
        other_parameters: parameters outside the kernels (biases, ...).
        other_bytes: their bytes, stored dense.
        stages: `StageAccuracy` per stage, as passed to `build_report`.
        baseline_accuracy: the uncompressed model's accuracy, if given.
    """

    model_name: str
    rows: tuple
    other_parameters: int = 0
    other_bytes: int = 0
    stages: tuple = ()
    baseline_accuracy: float | None = None

    @property
    def compressed_rows(self):
        return tuple(row for row in self.rows if row.compressed)

    @property
    def weights(self):
        """Total weights of the compressed kernels."""
        return sum(row.weights for row in self.compressed_rows)

    @property
    def nonzeros(self):
        """Non-zero weights left in the compressed kernels."""
        return sum(row.nonzeros for row in self.compressed_rows)

    @property
    def pruning_rate(self):
        """The papers' pruning rate: `weights / nonzeros` of the compressed kernels."""
        return _ratio(self.weights, self.nonzeros)

    @property
    def overall_pruning_rate(self):
        """`weights / nonzeros` over every compressible kernel."""
        return _ratio(
            sum(row.weights for row in self.rows), sum(row.nonzeros for row in self.rows)
        )

    @property
    def dense_bytes(self):
        """Bytes of every compressible kernel stored dense."""
        return sum(row.dense_bytes for row in self.rows)

    @property
    def compressed_bytes(self):
        """Bytes of every compressible kernel at its cheapest encoding."""
        return sum(row.compressed_bytes for row in self.rows)

    @property
    def storage_ratio(self):
        """`dense_bytes / compressed_bytes` of the kernels."""
        return _ratio(self.dense_bytes, self.compressed_bytes)

    def totals(self):
        """The summary figures, as a dict."""
        return {
            "weights": self.weights,
            "nonzeros": self.nonzeros,
            "pruning_rate": _finite(self.pruning_rate),
            "overall_pruning_rate": _finite(self.overall_pruning_rate),
            "dense_bytes": self.dense_bytes,
            "compressed_bytes": self.compressed_bytes,
            "storage_ratio": _finite(self.storage_ratio),
            "other_parameters": self.other_parameters,
            "other_bytes": self.other_bytes,
        }

    def to_dict(self):
        """A JSON-ready dict; `from_dict` reads it back (totals are recomputed)."""
        return {
            "model_name": self.model_name,
            "rows": [
                dict(dataclasses.asdict(row), shape=list(row.shape), sparsity=row.sparsity)
                for row in self.rows
            ],
            "other_parameters": self.other_parameters,
            "other_bytes": self.other_bytes,
            "stages": [dataclasses.asdict(stage) for stage in self.stages],
            "baseline_accuracy": self.baseline_accuracy,
            "totals": self.totals(),
        }

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(KernelRow)}
        rows = tuple(
            KernelRow(**{k: v for k, v in row.items() if k in fields}).with_shape(row["shape"])
            for row in data["rows"]
        )
        return cls(
            model_name=data["model_name"],
            rows=rows,
            other_parameters=data.get("other_parameters", 0),
            other_bytes=data.get("other_bytes", 0),
            stages=tuple(StageAccuracy(**stage) for stage in data.get("stages", ())),
            baseline_accuracy=data.get("baseline_accuracy"),
        )


def _ratio(a, b):
    return a / b if b else math.inf


def _finite(x):
    return None if math.isinf(x) else x


def _states(model):
    """`{(layer, kernel)}` tracked by an ADMMModel, and the plain model inside."""
    if isinstance(model, ADMMModel):
        return {(s.layer_name, s.kernel_name) for s, _ in model.pairs()}, model.model
    return None, model


def _stage_entry(entry):
    if isinstance(entry, StageAccuracy):
        return entry
    if not isinstance(entry, dict):
        raise TfadmmError(
            "Invalid `stages` entry: expected a dict with keys 'stage', "
            f"'accuracy_before', 'accuracy_after'. Received: {entry!r}"
        )
    entry = dict(entry)
    if "stage" not in entry and "name" in entry:
        entry["stage"] = entry.pop("name")
    unknown = sorted(set(entry) - set(_STAGE_KEYS))
    if unknown or "stage" not in entry:
        raise TfadmmError(
            "Invalid `stages` entry: expected keys 'stage', 'accuracy_before', "
            f"'accuracy_after', 'start_val_accuracy', 'chosen'. Received: {entry!r}"
        )
    chosen = entry.get("chosen")
    return StageAccuracy(
        str(entry["stage"]),
        _accuracy(entry.get("accuracy_before"), "accuracy_before"),
        _accuracy(entry.get("accuracy_after"), "accuracy_after"),
        _accuracy(entry.get("start_val_accuracy"), "start_val_accuracy"),
        None if chosen is None else str(chosen),
    )


def _accuracy(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TfadmmError(f"Invalid `{name}`: expected a number or None. Received: {value!r}")
    return float(value)


def kernel_row(layer_name, kernel_name, values, compressed=None):
    """The `KernelRow` of one kernel given as a NumPy array.

    Args:
        compressed: whether it counts in the pruning rate; None decides from
            the values (zeros, or codes cheaper than floats).
    """
    values = np.asarray(values)
    plan = encoding.plan(values)
    index = plan.index if plan.index != "relative" else f"relative-{plan.index_width}"
    if compressed is None:
        compressed = plan.nonzeros < plan.size or plan.codebook_size > 0
    return KernelRow(
        layer=layer_name,
        kernel=kernel_name,
        shape=tuple(int(d) for d in values.shape),
        weights=plan.size,
        nonzeros=plan.nonzeros,
        distinct_values=int(np.unique(values).size),
        bits=plan.value_bits,
        index=index,
        dense_bytes=int(values.nbytes),
        compressed_bytes=math.ceil(plan.total_bits / 8),
        compressed=bool(compressed),
    )


def build_report(
    model: keras.Model, *, stages: Any = None, baseline_accuracy: float | None = None
) -> CompressionReport:
    """Records the compression of a model's kernels.

    Reads the kernels as they are: for final figures, report a model after
    `tfadmm.project` or `tfadmm.strip` (in the ADMM phase, kernels are not in
    their sets yet).

    Args:
        model: a `keras.Model`, wrapped (`ADMMModel`) or plain.
        stages: optional list of `{"stage": name, "accuracy_before": float,
            "accuracy_after": float}` (or `StageAccuracy`), in stage order.
        baseline_accuracy: optional accuracy of the uncompressed model.

    Returns:
        A `CompressionReport`.

    Raises:
        TfadmmError: a model that is not a `keras.Model`, or a malformed stage.

    Example:
        >>> report = tfadmm.build_report(tfadmm.strip(admm_model))
        >>> print(tfadmm.report.render_table(report))
    """
    if not isinstance(model, keras.Model):
        raise TfadmmError(f"Expected a keras.Model. Received: {type(model).__name__}")
    tracked, model = _states(model)
    rows, kernel_ids = [], set()
    for layer_name, kernels in find_compressible_layers(model).items():
        for kernel_name, variable in kernels.items():
            kernel_ids.add(id(variable))
            compressed = None if tracked is None else (layer_name, kernel_name) in tracked
            rows.append(
                kernel_row(
                    layer_name, kernel_name, keras.ops.convert_to_numpy(variable), compressed
                )
            )
    others = [v for v in model.weights if id(v) not in kernel_ids]
    other_parameters = sum(math.prod(v.shape) for v in others)
    other_bytes = sum(
        math.prod(v.shape) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in others
    )
    return CompressionReport(
        model_name=model.name,
        rows=tuple(rows),
        other_parameters=int(other_parameters),
        other_bytes=int(other_bytes),
        stages=tuple(_stage_entry(s) for s in stages or ()),
        baseline_accuracy=_accuracy(baseline_accuracy, "baseline_accuracy"),
    )


# -- rendering -------------------------------------------------------------------


def to_json(report, indent=2):
    """The report as a JSON string."""
    return json.dumps(report.to_dict(), indent=indent)


def from_json(text):
    """Reads a report written by `to_json`."""
    return CompressionReport.from_dict(json.loads(text))


_HEADERS = (
    "layer", "kernel", "shape", "weights", "non-zeros", "sparsity", "distinct",
    "bits", "index", "dense B", "compressed B", "rate",
)


def _cells(row):
    return (
        row.layer + ("" if row.compressed else " (not compressed)"),
        row.kernel,
        "x".join(str(d) for d in row.shape),
        f"{row.weights:,}",
        f"{row.nonzeros:,}",
        f"{row.sparsity:.2%}",
        f"{row.distinct_values:,}",
        str(row.bits),
        row.index,
        f"{row.dense_bytes:,}",
        f"{row.compressed_bytes:,}",
        _times(row.pruning_rate),
    )


def _times(x):
    return "inf" if math.isinf(x) else f"{x:.1f}x"


def _accuracy_text(x):
    return "-" if x is None else f"{x:.4f}"


def _summary_lines(report):
    lines = [
        f"pruning rate (compressed kernels): {_times(report.pruning_rate)} "
        f"({report.weights:,} weights -> {report.nonzeros:,} non-zeros)",
        f"pruning rate (all kernels): {_times(report.overall_pruning_rate)}",
        f"kernel storage: {report.dense_bytes:,} B dense -> {report.compressed_bytes:,} B "
        f"compressed ({_times(report.storage_ratio)})",
        f"other parameters: {report.other_parameters:,} ({report.other_bytes:,} B, dense)",
    ]
    if report.baseline_accuracy is not None:
        lines.append(f"baseline accuracy: {_accuracy_text(report.baseline_accuracy)}")
    return lines


def _grid(rows, numeric):
    """Aligned plain-text lines: a header, a rule, then the rows."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(rows[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in rows[1:]]


def render_table(report):
    """The report as a plain-text table for a terminal."""
    table = [_HEADERS] + [_cells(row) for row in report.rows]
    out = [f"Compression report: {report.model_name}"]
    out += _grid(table, numeric=set(range(3, 12)) - {8})
    out.append("")
    out += _summary_lines(report)
    if report.stages:
        columns = _stage_columns(report.stages)
        stages = [_STAGE_HEADERS[:columns]] + [_stage_cells(s)[:columns] for s in report.stages]
        out += [""] + _grid(stages, numeric={1, 2, 3})
    return "\n".join(out)


_STAGE_HEADERS = ("stage", "accuracy before", "accuracy after", "start (validation)", "kept")


def _stage_columns(stages):
    """3, or 5 when any stage records its starting point or kept candidate."""
    return 5 if any(s.start_val_accuracy is not None or s.chosen for s in stages) else 3


def _stage_cells(stage):
    return (stage.stage, _accuracy_text(stage.accuracy_before),
            _accuracy_text(stage.accuracy_after), _accuracy_text(stage.start_val_accuracy),
            stage.chosen or "-")


def render_markdown(report):
    """The report as GitHub-flavoured Markdown (for READMEs and TensorBoard text)."""
    out = [f"### Compression report: {report.model_name}", ""]
    out.append("| " + " | ".join(_HEADERS) + " |")
    out.append("|" + "|".join("---" if i < 3 or i == 8 else "--:" for i in range(12)) + "|")
    out += ["| " + " | ".join(_cells(row)) + " |" for row in report.rows]
    out.append("")
    out += [f"- {line}" for line in _summary_lines(report)]
    if report.stages:
        columns = _stage_columns(report.stages)
        out += ["", "| " + " | ".join(_STAGE_HEADERS[:columns]) + " |",
                "|" + "|".join(("---", "--:", "--:", "--:", "---")[:columns]) + "|"]
        out += ["| " + " | ".join(_stage_cells(s)[:columns]) + " |" for s in report.stages]
    return "\n".join(out) + "\n"
