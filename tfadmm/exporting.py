"""`export`: write a compressed model in a form whose size really drops.

- `"savedmodel"`: a TensorFlow SavedModel whose compressed kernels are stored
  compactly (non-zero values or integer codes packed to 1/2/4/8/16 bits, plus
  a bitmask or relative index, see `tfadmm.encoding`) and rebuilt into dense
  kernels inside the served graph. It holds TensorFlow ops only:
  `tf.saved_model.load(path).signatures["serving_default"]` works without
  tfadmm or Keras.
- `"keras"`: the plain (stripped) model as a `.keras` file.
- `"tflite"`: a TFLite flatbuffer converted with sparsity optimization (and
  int8 weights when kernels are quantized); `evaluate_tflite` measures its
  accuracy.

Every write is atomic: the export is built in a temporary folder next to
`path` and renamed into place, so `path` never holds a half-written export.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tfadmm import encoding, lazy_tensorflow, surgery
from tfadmm.admm_model import ADMMModel
from tfadmm.compressible import find_compressible_layers
from tfadmm.data.specs import Normalization
from tfadmm.errors import ModelError, TfadmmError
from tfadmm.lazy_tensorflow import needs_tensorflow
from tfadmm.report import build_report
from tfadmm.wrapping import strip

tf = needs_tensorflow("tfadmm.export (SavedModel and TFLite)")

FORMATS = ("savedmodel", "keras", "tflite")

#: The serving name of an input Keras named itself (`keras_tensor_3`, `input_layer_1`):
#: `input`, or `input_<i>` for the i-th of several.
DEFAULT_INPUT_NAME = "input"
_KERAS_AUTO_NAME = re.compile(r"(keras_tensor|input_layer)(_\d+)?")


@dataclass(frozen=True)
class ServingInput:
    """One input of the SavedModel's `serving_default` signature.

    Attributes:
        name: the keyword it is passed as (`serving_default(input=x)`).
        shape: `None` for the free batch dimension.
        dtype: e.g. `"float32"`.
    """

    name: str
    shape: tuple
    dtype: str


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote, and how it compares.

    Attributes:
        path: where the export is.
        format: `"savedmodel"`, `"keras"` or `"tflite"`.
        bytes: its size on disk (all files of a folder).
        dense_savedmodel_bytes: size of the same model as a dense SavedModel
            (Keras' `model.export`), when measured.
        theoretical_bytes: the kernels at their cheapest encoding plus the other
            parameters dense (`CompressionReport.compressed_bytes + other_bytes`).
        inputs: the `serving_default` inputs (`"savedmodel"` only, else empty).
        preprocessing: the `Normalization` baked into `serving_default` (which
            then takes raw pixel values in [0, 255]), or None.
    """

    path: str
    format: str
    bytes: int
    dense_savedmodel_bytes: int | None
    theoretical_bytes: int
    inputs: tuple = ()
    preprocessing: Normalization | None = None

    @property
    def ratio_to_dense(self):
        if not self.dense_savedmodel_bytes:
            return None
        return self.dense_savedmodel_bytes / self.bytes


def disk_size(path):
    """Bytes of a file, or of every file under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _plain(model):
    if isinstance(model, ADMMModel):
        return strip(model)
    if not isinstance(model, keras.Model):
        raise ModelError(f"Expected a keras.Model. Received: {type(model).__name__}")
    return model


def export(
    model: keras.Model,
    path: str | os.PathLike,
    format: str = "savedmodel",
    *,
    representative_data: Any = None,
    preprocessing: Normalization | None = None,
    overwrite: bool = False,
    measure_dense: bool = True,
    shrink: bool = False,
) -> ExportResult:
    """Writes `model` to `path` in a compact format.

    Args:
        model: a `keras.Model`, or an `ADMMModel` (stripped first: projected if
            still in its ADMM phase).
        path: the folder (`savedmodel`) or file (`keras`, `tflite`) to write.
        format: `"savedmodel"`, `"keras"` or `"tflite"`.
        representative_data: for `"tflite"` only: optional iterable of input
            batches; given, activations are quantized to int8 too.
        preprocessing: for `"savedmodel"` only: a `tfadmm.data.Normalization`
            (e.g. `Normalization.of_dataset("cifar10")`) that `serving_default`
            applies first, so it takes raw pixel values in [0, 255]
            (float32) instead of normalised ones.
        overwrite: replace an existing `path`.
        measure_dense: also write a dense SavedModel to a temporary folder and
            record its size (`ExportResult.dense_savedmodel_bytes`); skipped for
            `"keras"` where TensorFlow is not installed (Keras' JAX backend).
        shrink: first remove the filters and channels that structured pruning
            made unnecessary (`tfadmm.surgery.shrink`): a smaller, faster model
            with the same outputs.

    Returns:
        An `ExportResult`.

    Raises:
        TfadmmError: an unknown format, an existing `path` without
            `overwrite=True`, or `representative_data` / `preprocessing`
            with a format that does not use it.
        ModelError: a model whose inputs cannot be told (a subclassed model
            never called on a Keras input), or `preprocessing` for a model
            that does not take one image input.

    Example:
        >>> tfadmm.export(admm_model, "lenet_savedmodel")
        >>> tf.saved_model.load("lenet_savedmodel").signatures["serving_default"]
    """
    if format not in FORMATS:
        raise TfadmmError(
            f"Invalid `format`: expected one of {', '.join(FORMATS)}. Received: format={format!r}"
        )
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise TfadmmError(
            f"Refusing to overwrite '{path}': it already exists (pass overwrite=True)."
        )
    if representative_data is not None and format != "tflite":
        raise TfadmmError(
            "`representative_data` is only used by format='tflite'. "
            f"Received: format={format!r}"
        )
    if preprocessing is not None and format != "savedmodel":
        raise TfadmmError(
            f"`preprocessing` is only used by format='savedmodel'. Received: format={format!r}"
        )
    if preprocessing is not None and not isinstance(preprocessing, Normalization):
        raise TfadmmError(
            "Invalid `preprocessing`: expected a tfadmm.data.Normalization. "
            f"Received: preprocessing={preprocessing!r}"
        )
    if measure_dense and format == "keras" and not lazy_tensorflow.available():
        measure_dense = False  # a SavedModel needs TensorFlow; a `.keras` file does not
    model = _plain(model)
    if shrink:
        model = surgery.shrink(model)
    report = build_report(model)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tfadmm-export-", dir=parent) as tmp:
        staged = os.path.join(tmp, "export")
        inputs = ()
        if format == "savedmodel":
            inputs = write_savedmodel(model, staged, preprocessing=preprocessing)
        elif format == "keras":
            staged += ".keras"
            model.save(staged)
        else:
            _write_tflite(model, staged, tmp, report, representative_data)
        size = disk_size(staged)
        dense = None
        if measure_dense:
            dense_path = os.path.join(tmp, "dense")
            _export_dense(model, dense_path)
            dense = disk_size(dense_path)
        _move_into_place(staged, path, tmp)
    return ExportResult(
        path=path,
        format=format,
        bytes=size,
        dense_savedmodel_bytes=dense,
        theoretical_bytes=report.compressed_bytes + report.other_bytes,
        inputs=inputs,
        preprocessing=preprocessing,
    )


def _move_into_place(staged, path, tmp):
    """Renames `staged` to `path`; an existing `path` is moved aside first, then removed."""
    if os.path.lexists(path):
        aside = os.path.join(tmp, "previous")
        os.replace(path, aside)
        try:
            os.replace(staged, path)
        except OSError:
            os.replace(aside, path)
            raise
    else:
        os.replace(staged, path)


# -- SavedModel ---------------------------------------------------------------


def _serving_names(inputs):
    """The model's input names, Keras' own (`keras_tensor_3`) replaced by `input[_<i>]`."""
    names = []
    for i, x in enumerate(inputs):
        name = x.name.replace("/", "_")
        if _KERAS_AUTO_NAME.fullmatch(name):
            name = DEFAULT_INPUT_NAME if len(inputs) == 1 else f"{DEFAULT_INPUT_NAME}_{i}"
        names.append(name)
    return names


def input_signature(model):
    """`tf.TensorSpec`s of the model's inputs (batch dimension free).

    Each is named after its Keras input; an input Keras named itself
    (`keras_tensor_3`, which changes from one session to the next) is served
    as `input` (`input_<i>` among several), a stable name.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ModelError(
            f"Cannot tell the inputs of model '{model.name}': export supports models "
            "with Keras inputs (Sequential with an Input, functional, or a subclassed "
            "model called on keras.Input)."
        )
    return [
        tf.TensorSpec((None, *x.shape[1:]), x.dtype, name=name)
        for x, name in zip(inputs, _serving_names(inputs), strict=True)
    ]


def _kernel_ids(model):
    return {
        id(v): (layer, name)
        for layer, kernels in find_compressible_layers(model).items()
        for name, v in kernels.items()
    }


class _Blob:
    """NumPy arrays laid end to end in one uint8 buffer, sliced back with TF ops.

    One variable for the whole model keeps the checkpoint's per-variable
    overhead (names, object graph) out of the size.
    """

    def __init__(self):
        self.chunks, self.size = [], 0

    def add(self, array):
        """Appends `array`; returns the handle that `read` takes."""
        shape = np.shape(array)  # before `ascontiguousarray`, which makes a scalar 1-D
        array = np.ascontiguousarray(array)
        handle = (self.size, array.nbytes, array.dtype, shape)
        self.chunks.append(np.frombuffer(array.tobytes(), dtype=np.uint8))
        self.size += array.nbytes
        return handle

    def buffer(self):
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.uint8)

    @staticmethod
    def read(buffer, handle):
        offset, nbytes, dtype, shape = handle
        raw = buffer[offset : offset + nbytes]
        if dtype == np.uint8:
            return tf.reshape(raw, shape)
        values = tf.bitcast(tf.reshape(raw, [-1, dtype.itemsize]), tf.as_dtype(dtype))
        return tf.reshape(values, shape)


class _CompactModule:
    """Builds the `tf.Module` served by `write_savedmodel` (kept apart from Keras)."""

    def __init__(self, model):
        kernels = _kernel_ids(model)
        blob = _Blob()
        # Per model variable: ("dense", handle) or ("kernel", {name: handle}, plan, shape, dtype).
        self.sources = []
        for variable in model.variables:
            value = keras.ops.convert_to_numpy(variable)
            if id(variable) in kernels:
                plan = encoding.plan(
                    value,
                    index_widths=encoding.PACKED_WIDTHS,
                    code_widths=encoding.PACKED_WIDTHS,
                )
                handles = {
                    name: blob.add(array)
                    for name, array in encoding.encode(value, plan).items()
                }
                self.sources.append(("kernel", handles, plan, value.shape, variable.dtype))
            else:
                self.sources.append(("dense", blob.add(value)))
        self.module = tf.Module()
        self.module.weights = tf.Variable(blob.buffer(), trainable=False, name="weights")

    def values(self):
        """Tensors for every model variable, kernels decoded."""
        buffer = tf.convert_to_tensor(self.module.weights)
        out = []
        for source in self.sources:
            if source[0] == "dense":
                out.append(_Blob.read(buffer, source[1]))
            else:
                _, handles, plan, shape, dtype = source
                arrays = {name: _Blob.read(buffer, h) for name, h in handles.items()}
                out.append(encoding.decode(arrays, plan, shape, dtype))
        return out


def write_savedmodel(model, path, preprocessing=None):
    """Writes a SavedModel with compact kernels and a `serving_default` signature.

    The served function decodes every kernel (TensorFlow ops only) and runs the
    model's forward pass on them through `model.stateless_call`, so the
    Keras variables themselves are never saved.

    Args:
        model: a plain `keras.Model`.
        path: the folder to write.
        preprocessing: a `Normalization` applied to the input first, or None.

    Returns:
        The `ServingInput`s of `serving_default`.
    """
    compact = _CompactModule(model)
    position = {id(v): i for i, v in enumerate(model.variables)}
    trainable = [position[id(v)] for v in model.trainable_variables]
    non_trainable = [position[id(v)] for v in model.non_trainable_variables]
    signature = input_signature(model)
    if preprocessing is not None:
        _check_image_input(model, signature, preprocessing)

    @tf.function(input_signature=signature)
    def serve(*inputs):
        if preprocessing is not None:
            inputs = [preprocessing.apply(inputs[0], signature[0].shape[-1])]
        values = compact.values()
        outputs, _ = model.stateless_call(
            [values[i] for i in trainable],
            [values[i] for i in non_trainable],
            inputs[0] if len(inputs) == 1 else list(inputs),
            training=False,
        )
        return outputs

    compact.module.serve = serve
    tf.saved_model.save(
        compact.module, path, signatures={"serving_default": serve.get_concrete_function()}
    )
    return tuple(
        ServingInput(spec.name, tuple(spec.shape.as_list()), spec.dtype.name) for spec in signature
    )


def _check_image_input(model, signature, preprocessing):
    """`preprocessing` needs one float image input whose channels its mean / std cover."""
    spec = signature[0]
    channels = spec.shape[-1] if len(signature) == 1 and spec.shape.rank == 4 else None
    if channels is None or not spec.dtype.is_floating or any(
        channels % len(values) for values in (preprocessing.mean, preprocessing.std)
    ):
        shapes = ", ".join(f"{s.shape.as_list()} {s.dtype.name}" for s in signature)
        raise ModelError(
            f"Cannot bake {preprocessing.describe()} into model '{model.name}': expected one "
            f"float image input (batch, height, width, channels) with {len(preprocessing.mean)} "
            f"channel(s) or a multiple. Received: {shapes}"
        )


def _export_dense(model, path):
    """A dense SavedModel by Keras' own `model.export` (the size to beat)."""
    # `model.export` prints a summary of the endpoint; the library never prints.
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(path, format="tf_saved_model", verbose=False)


# -- TFLite --------------------------------------------------------------------


def _write_tflite(model, target, tmp, report, representative_data):
    dense_path = os.path.join(tmp, "tflite_source")
    _export_dense(model, dense_path)
    converter = tf.lite.TFLiteConverter.from_saved_model(dense_path)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    quantized = any(row.compressed and row.bits <= 8 for row in report.rows)
    if quantized or representative_data is not None:
        optimizations.append(tf.lite.Optimize.DEFAULT)
    converter.optimizations = optimizations
    if representative_data is not None:

        def representative():
            for batch in representative_data:
                batch = batch if isinstance(batch, (list, tuple)) else [batch]
                yield [np.asarray(x, dtype=np.float32) for x in batch]

        converter.representative_dataset = representative
    with open(target, "wb") as f:
        f.write(converter.convert())


def tflite_interpreter(path: str | os.PathLike):
    """A TFLite interpreter for `path`, tensors not yet allocated.

    LiteRT's (`ai_edge_litert`) when installed, else `tf.lite.Interpreter`
    (deprecated in TensorFlow, its warning silenced). `evaluate_tflite` runs
    one; use it directly to time or inspect an exported model.
    """
    path = os.fspath(path)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return tf.lite.Interpreter(model_path=path)
    return Interpreter(model_path=path)


def evaluate_tflite(path: str | os.PathLike, dataset: Any) -> float:
    """Top-1 accuracy of a TFLite model on `(inputs, labels)` batches.

    Args:
        path: a `.tflite` file.
        dataset: an iterable of `(x, y)` batches (a `tf.data.Dataset` or a list
            of NumPy pairs); `y` holds integer labels or one-hot rows.

    Returns:
        The fraction of examples whose arg-max prediction equals the label.
    """
    interpreter = tflite_interpreter(path)
    input_detail = interpreter.get_input_details()[0]
    output_index = interpreter.get_output_details()[0]["index"]
    correct = total = 0
    for x, y in dataset:
        x = np.asarray(x)
        interpreter.resize_tensor_input(input_detail["index"], x.shape)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        if detail["dtype"] == np.int8:
            scale, zero = detail["quantization"]
            x = np.round(x / scale + zero).astype(np.int8)
        interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
        interpreter.invoke()
        predictions = np.argmax(interpreter.get_tensor(output_index), axis=-1)
        y = np.asarray(y)
        labels = np.argmax(y, axis=-1) if y.ndim == predictions.ndim + 1 else y
        correct += int(np.sum(predictions == labels.reshape(predictions.shape)))
        total += int(predictions.size)
    if total == 0:
        raise TfadmmError("evaluate_tflite() received an empty dataset.")
    return correct / total


