"""`ADMMTensorBoard`: ADMM at work, one layer's story under one tag prefix."""

from __future__ import annotations

import keras
from keras import ops

from tfadmm import admm, lazy_tensorflow
from tfadmm.admm_model import ADMMModel
from tfadmm.callbacks.event_writer import EventWriter
from tfadmm.callbacks.tf_summary_writer import TensorFlowWriter
from tfadmm.report import render_markdown

_RESIDUAL = "_residual"

#: The "Custom Scalars" dashboard: per category, one chart per quantity, each
#: chart drawing every tag that matches its regex (every layer, one line each).
LAYOUT = (
    ("ADMM: every layer", (
        ("primal residual ||W - Z|| / ||W||", r".*/primal_residual$"),
        ("dual residual rho ||Z_k - Z_k-1||", r".*/dual_residual$"),
        ("sparsity", r".*/sparsity$"),
        ("would-be sparsity", r".*/would_be_sparsity$"),
        ("level distance ||W - levels(W)|| / ||W||", r".*/level_distance$"),
        ("on level", r".*/on_level$"),
        ("rho", r"admm/rho$"),
        ("penalty", r"admm/penalty$"),
    )),
    ("training", (
        ("loss", r"epoch/(val_)?loss$"),
        ("accuracy", r"epoch/.*accuracy$"),
    )),
)


def custom_scalars_layout(layout=LAYOUT):
    """The `layout_pb2.Layout` of `layout`: `((category, ((title, tag_regex), ...)), ...)`."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    return layout_pb2.Layout(category=[
        layout_pb2.Category(title=category, chart=[
            layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[tag]))
            for title, tag in charts
        ])
        for category, charts in layout
    ])


class ADMMTensorBoard(keras.callbacks.Callback):
    """Writes the ADMM quantities of every compressed kernel to TensorBoard.

    At the end of every epoch (a step counter that keeps growing across `fit`
    calls, so the stages of a recipe follow each other), it writes:

    - `<label>/would_be_sparsity`: the sparsity the kernel would have if it
      were projected now (its constraint applied to W);
    - `<label>/sparsity`: its sparsity as it is;
    - `<label>/primal_residual`: `||W - Z|| / ||W||`;
    - `<label>/dual_residual`: `rho * ||Z_k - Z_{k-1}||` at the last Z-step;
    - `<label>/<name>` for every constraint diagnostic in the logs;
    - `admm/rho`, `admm/penalty`;
    - `epoch/<metric>` for the other logs (`epoch/loss`, `epoch/val_accuracy`);
    - every `histogram_freq` epochs, `<label>/kernel`: a histogram of W;
    - once, the "Custom Scalars" layout (`LAYOUT`): one chart per quantity
      (primal residual, sparsity, level distance, rho, penalty, ...) with
      every layer's line in it.

    `<label>` is the layer's name (`conv1`), or `layer.kernel_name` for a
    kernel other than `kernel`. The per-kernel values are read from the model
    when it is an `ADMMModel`; with any other model, from the fit logs
    (`admm_penalty`, `admm_rho`, `<label>_residual`, ...).

    Args:
        log_dir: the folder TensorBoard reads.
        histogram_freq: epochs between kernel histograms (0: none).

    Example:
        >>> board = tfadmm.callbacks.ADMMTensorBoard("logs/prune")
        >>> admm_model.fit(x, y, epochs=10, callbacks=[board])
        >>> board.write_report(tfadmm.build_report(admm_model))
    """

    def __init__(self, log_dir, histogram_freq=1):
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or (
            histogram_freq < 0
        ):
            raise ValueError(
                "Invalid `histogram_freq`: expected an integer >= 0. "
                f"Received: histogram_freq={histogram_freq!r}"
            )
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.step = 0
        self._writer = None

    @property
    def writer(self):
        """The event file writer: `tf.summary`'s where TensorFlow is installed, else
        tensorboard's own (`EventWriter`); opened, with the layout, at first use."""
        if self._writer is None:
            if lazy_tensorflow.available():
                self._writer = TensorFlowWriter(self.log_dir)
            else:
                self._writer = EventWriter(self.log_dir)
            self._writer.write_layout(custom_scalars_layout())
        return self._writer

    def _pairs(self):
        model = self.model
        return model.pairs() if isinstance(model, ADMMModel) else []

    def kernel_scalars(self):
        """`{tag: float}` of the per-kernel quantities read from an `ADMMModel`."""
        values = {}
        for state, w in self._pairs():
            w = ops.cast(w, "float32")
            size = float(ops.size(w))
            label = state.label
            zeros = size - float(ops.count_nonzero(w))
            values[f"{label}/sparsity"] = zeros / size
            if state.constraint is not None and state.active:
                projected = state.constraint(w, state.mask)
                values[f"{label}/would_be_sparsity"] = (
                    size - float(ops.count_nonzero(projected))
                ) / size
            else:
                values[f"{label}/would_be_sparsity"] = zeros / size
            values[f"{label}/primal_residual"] = float(admm.primal_residual(w, state.z))
            values[f"{label}/dual_residual"] = float(ops.convert_to_numpy(state.dual_residual))
        if self._pairs():
            values["admm/rho"] = float(ops.convert_to_numpy(self.model.rho))
        return values

    def log_scalars(self, logs, labels=()):
        """`{tag: float}` from fit logs: ADMM keys grouped per kernel, metrics under `epoch/`."""
        labels = set(labels) | {
            key[: -len(_RESIDUAL)] for key in logs if key.endswith(_RESIDUAL)
        }
        values = {}
        for key, value in logs.items():
            if key == "admm_penalty":
                tag = "admm/penalty"
            elif key == "admm_rho":
                tag = "admm/rho"
            else:
                tag = None
                for label in sorted(labels, key=len, reverse=True):
                    if key.startswith(label + "_"):
                        name = key[len(label) + 1 :]
                        tag = f"{label}/{'primal_residual' if name == 'residual' else name}"
                        break
                tag = tag or f"epoch/{key}"
            values[tag] = float(value)
        return values

    def on_epoch_end(self, epoch, logs=None):
        pairs = self._pairs()
        # The model's own values win over the epoch means of the logs.
        scalars = self.log_scalars(logs or {}, [s.label for s, _ in pairs])
        scalars.update(self.kernel_scalars())
        self.writer.scalars(scalars, self.step)
        if self.histogram_freq and self.step % self.histogram_freq == 0:
            for state, w in pairs:
                self.writer.histogram(f"{state.label}/kernel", ops.convert_to_numpy(w), self.step)
        self.step += 1

    def on_train_end(self, logs=None):
        self.writer.flush()

    def write_report(self, report, step=None, name="compression_report"):
        """Writes a `CompressionReport` as Markdown text (tag `report/<name>`).

        Args:
            report: from `tfadmm.build_report`.
            step: the step to write it at; defaults to the last epoch written.
            name: the text's name, e.g. the stage's.
        """
        step = max(self.step - 1, 0) if step is None else step
        self.writer.text(f"report/{name}", render_markdown(report), step)
        self.writer.flush()

    def write_scalars(self, values, step):
        """Writes `{tag: number}` at `step` (a recipe's per-stage accuracies)."""
        self.writer.scalars(values, step)

    def write_sensitivity(self, curves, name="sensitivity"):
        """Writes `SensitivityCurves`: tags `<name>/<layer>/loss` and `.../accuracy`.

        The step of a point is its sparsity in per mille (`990` for 0.99); the
        unpruned model is step 0.
        """
        for layer in curves.loss:
            points = zip(curves.sparsities, curves.loss[layer], curves.accuracy[layer],
                         strict=True)
            for s, loss, accuracy in [(0.0, curves.base_loss, curves.base_accuracy), *points]:
                self.writer.scalars({f"{name}/{layer}/loss": loss,
                                     f"{name}/{layer}/accuracy": accuracy}, round(s * 1000))
        self.writer.flush()

    def close(self):
        """Flushes and closes the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
