import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tfadmm
from tests._tiny_models import batch, dense_model
from tfadmm.callbacks import ADMMTensorBoard


def _read(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def _scalar(accumulator, tag):
    import tensorflow as tf

    return [
        (event.step, float(tf.make_ndarray(event.tensor_proto)))
        for event in accumulator.Tensors(tag)
    ]


def test_fit_writes_each_layers_story_under_its_name(tmp_path):
    admm_model = tfadmm.wrap(dense_model(), {"fc1": tfadmm.Sparsity(0.9)}, update_every_steps=1)
    admm_model.compile(optimizer="sgd", loss="mse")
    x, y = batch((6,), rows=16), batch((3,), rows=16, seed=2)
    board = ADMMTensorBoard(tmp_path, histogram_freq=2)
    admm_model.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), callbacks=[board],
                   verbose=0)
    board.write_report(tfadmm.build_report(admm_model), name="prune")
    board.close()

    accumulator = _read(tmp_path)
    tags = set(accumulator.Tags()["tensors"])
    assert {
        "fc1/would_be_sparsity", "fc1/sparsity", "fc1/primal_residual", "fc1/dual_residual",
        "fc1/kernel", "admm/rho", "admm/penalty", "epoch/loss", "epoch/val_loss",
        "report/prune",
    } <= tags
    assert not any(tag.startswith("fc2/") for tag in tags)
    assert [step for step, _ in _scalar(accumulator, "admm/rho")] == [0, 1, 2]
    would_be = _scalar(accumulator, "fc1/would_be_sparsity")
    assert all(value == pytest.approx(1 - 20 / 192) for _, value in would_be)
    assert [event.step for event in accumulator.Tensors("fc1/kernel")] == [0, 2]
    # ADMM at work: rho grows at every Z/U update, the residual is logged.
    rho = [value for _, value in _scalar(accumulator, "admm/rho")]
    assert rho[0] < rho[1] < rho[2]
    assert all(value > 0 for _, value in _scalar(accumulator, "fc1/dual_residual"))
    text = accumulator.Tensors("report/prune")[0].tensor_proto.string_val[0].decode()
    assert text.startswith("### Compression report: tiny")


def test_steps_keep_growing_across_fits(tmp_path):
    admm_model = tfadmm.wrap(dense_model(), {"fc*": tfadmm.Sparsity(0.9)})
    admm_model.compile(optimizer="sgd", loss="mse")
    x, y = batch((6,), rows=8), batch((3,), rows=8, seed=2)
    board = ADMMTensorBoard(tmp_path, histogram_freq=0)
    for _ in range(2):
        admm_model.fit(x, y, epochs=1, batch_size=8, callbacks=[board], verbose=0)
    board.close()
    accumulator = _read(tmp_path)
    assert [step for step, _ in _scalar(accumulator, "fc2/primal_residual")] == [0, 1]
    assert "fc1/kernel" not in accumulator.Tags()["tensors"]


def test_plain_model_logs_are_grouped_too(tmp_path):
    board = ADMMTensorBoard(tmp_path)
    board.set_model(dense_model())
    board.on_epoch_end(
        0,
        {"admm_penalty": 1.5, "admm_rho": 0.01, "fc1_residual": 0.25,
         "fc1_level_distance": 0.125, "accuracy": 0.5, "val_accuracy": 0.75},
    )
    board.close()
    accumulator = _read(tmp_path)
    values = {tag: _scalar(accumulator, tag) for tag in accumulator.Tags()["tensors"]}
    assert values == {
        "admm/penalty": [(0, 1.5)],
        "admm/rho": [(0, pytest.approx(0.01))],
        "fc1/primal_residual": [(0, 0.25)],
        "fc1/level_distance": [(0, 0.125)],
        "epoch/accuracy": [(0, 0.5)],
        "epoch/val_accuracy": [(0, 0.75)],
    }


def test_invalid_histogram_freq_is_rejected(tmp_path):
    with pytest.raises(ValueError) as info:
        ADMMTensorBoard(tmp_path, histogram_freq=-1)
    assert str(info.value) == (
        "Invalid `histogram_freq`: expected an integer >= 0. Received: histogram_freq=-1"
    )


