"""tensorboard's own event writer writes what tf.summary writes, without TensorFlow."""

import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG
from tensorboard.util import tensor_util

from tests._tiny_models import dense_model
from tfadmm.callbacks import ADMMTensorBoard
from tfadmm.callbacks.event_writer import EventWriter
from tfadmm.callbacks.tensorboard import custom_scalars_layout
from tfadmm.callbacks.tf_summary_writer import TensorFlowWriter


def _read(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def _write(writer):
    writer.write_layout(custom_scalars_layout())
    writer.scalars({"admm/rho": 0.001, "fc1/sparsity": 0.5}, 0)
    writer.scalars({"admm/rho": 0.00107, "fc1/sparsity": 0.75}, 1)
    writer.histogram("fc1/kernel", np.linspace(-1, 1, 97, dtype=np.float32), 1)
    writer.text("report/prune", "### Compression report", 2)
    writer.close()


def test_the_same_tags_steps_values_and_plugins_as_tf_summary(tmp_path):
    _write(EventWriter(tmp_path / "tensorboard"))
    _write(TensorFlowWriter(tmp_path / "tf"))
    ours, theirs = _read(tmp_path / "tensorboard"), _read(tmp_path / "tf")
    tags = set(theirs.Tags()["tensors"])
    assert set(ours.Tags()["tensors"]) == tags == {
        CONFIG_SUMMARY_TAG, "admm/rho", "fc1/sparsity", "fc1/kernel", "report/prune"}
    for tag in tags:
        assert (ours.SummaryMetadata(tag).plugin_data.plugin_name
                == theirs.SummaryMetadata(tag).plugin_data.plugin_name), tag
        a, b = ours.Tensors(tag), theirs.Tensors(tag)
        assert [e.step for e in a] == [e.step for e in b], tag
        for x, y in zip(a, b, strict=True):
            x, y = tensor_util.make_ndarray(x.tensor_proto), tensor_util.make_ndarray(
                y.tensor_proto)
            assert x.dtype == y.dtype, tag
            if x.dtype.kind == "f":
                np.testing.assert_allclose(x, y, rtol=1e-6, err_msg=tag)
            else:
                np.testing.assert_array_equal(x, y, err_msg=tag)


def test_admm_tensorboard_writes_with_it_without_tensorflow(tmp_path, monkeypatch):
    model = dense_model()
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    board = ADMMTensorBoard(tmp_path)
    board.set_model(model)
    board.on_epoch_end(0, {"admm_penalty": 1.5, "fc1_residual": 0.25, "val_accuracy": 0.75})
    board.write_scalars({"stages/test_accuracy": 0.5}, step=1)
    assert isinstance(board.writer, EventWriter)
    board.close()
    accumulator = _read(tmp_path)
    values = {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                    for e in accumulator.Tensors(tag)]
              for tag in accumulator.Tags()["tensors"] if tag != CONFIG_SUMMARY_TAG}
    assert values == {"admm/penalty": [(0, 1.5)], "fc1/primal_residual": [(0, 0.25)],
                      "epoch/val_accuracy": [(0, 0.75)], "stages/test_accuracy": [(1, 0.5)]}
    assert CONFIG_SUMMARY_TAG in accumulator.Tags()["tensors"]


def test_without_tensorboard_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(ImportError) as info:
        EventWriter(tmp_path)
    assert str(info.value) == (
        "TensorBoard logging without TensorFlow needs the tensorboard package. Expected an "
        "importable `tensorboard` (pip install tensorboard). Received: import of "
        "tensorboard.summary.writer.event_file_writer halted; None in sys.modules"
    )
