import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar.metadata import CONFIG_SUMMARY_TAG

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
    values = {tag: _scalar(accumulator, tag) for tag in accumulator.Tags()["tensors"]
              if tag != CONFIG_SUMMARY_TAG}  # the custom-scalars layout
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




# -- what a user meets: a finished run's logs, read by TensorBoard's own server code ------------

BOARD_RECIPE = """\
version: 1
name: board
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 128, validation_split: 0.25}
defaults:
  admm: {epochs: 1, update_every_steps: 1}
  retrain: {epochs: 1}
stages:
  - name: prune
    targets: {"*": {sparsity: 0.5}}
  - name: binarize
    targets: {"fc*": {binary: true}}
"""


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """A werkzeug client of the TensorBoard app serving a finished run's `logs/`."""
    from tensorboard import default, program
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from werkzeug import test as werkzeug_test

    from tfadmm.recipes import parse_recipe, run_recipe

    out = tmp_path_factory.mktemp("board") / "out"
    run_recipe(parse_recipe(BOARD_RECIPE, "board.yaml"), out, verbose=0)
    logdir = str(out / "logs")
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    server = program.TensorBoard(plugins=default.get_plugins())
    server.configure(logdir=logdir)
    app = application.TensorBoardWSGIApp(
        server.flags, server.plugin_loaders,
        data_provider.MultiplexerDataProvider(multiplexer, logdir),
        server.assets_zip_provider, multiplexer,
    )
    return werkzeug_test.Client(app)


def _get(client, route, **query):
    response = client.get(route, query_string=query)
    assert response.status_code == 200, (route, response.get_data(as_text=True))
    return response.get_json()


def test_tensorboard_shows_one_chart_per_quantity_with_every_layer(served_run):
    assert _get(served_run, "/data/plugins_listing")["custom_scalars"]["enabled"]
    layout = _get(served_run, "/data/plugin/custom_scalars/layout")
    charts = {
        chart["title"]: chart["multiline"]["tag"][0]
        for category in layout["category"] for chart in category["chart"]
    }
    layers = {"conv1", "conv2", "fc1", "fc2"}
    expected = {  # chart -> the tags it draws
        "primal residual ||W - Z|| / ||W||": {f"{name}/primal_residual" for name in layers},
        "sparsity": {f"{name}/sparsity" for name in layers},
        "would-be sparsity": {f"{name}/would_be_sparsity" for name in layers},
        "level distance ||W - levels(W)|| / ||W||": {"fc1/level_distance", "fc2/level_distance"},
        "rho": {"admm/rho"},
        "penalty": {"admm/penalty"},
        "loss": {"epoch/loss", "epoch/val_loss"},
    }
    for title, tags in expected.items():
        drawn = _get(served_run, "/data/plugin/custom_scalars/scalars", run=".",
                     tag=charts[title])
        assert drawn["regex_valid"], title
        assert set(drawn["tag_to_events"]) == tags, title
        assert all(drawn["tag_to_events"][tag] for tag in tags), title
    # Four epochs (ADMM + retrain per stage): pruned weights are zero from the first retrain on.
    sparsity = _get(served_run, "/data/plugin/custom_scalars/scalars", run=".",
                    tag=charts["sparsity"])["tag_to_events"]["conv1/sparsity"]
    assert [step for _, step, _ in sparsity] == [0, 1, 2, 3]
    assert sparsity[-1][2] == pytest.approx(0.5)


def test_tensorboard_shows_each_stages_report(served_run):
    tags = _get(served_run, "/data/plugin/text/tags")["."]
    assert {"report/prune", "report/binarize"} <= set(tags)
    report = _get(served_run, "/data/plugin/text/text", run=".", tag="report/binarize")
    assert "Compression report" in report[-1]["text"]
