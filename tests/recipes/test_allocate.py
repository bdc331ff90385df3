"""`allocate:` in recipes: parsing, checks against the model, the runner's allocation.json."""

import json
import sys

import keras
import numpy as np
import pytest

from tfadmm.allocation import Allocation
from tfadmm.errors import RecipeError
from tfadmm.recipes import parse_recipe, run_recipe
from tfadmm.recipes import runner as runner_module
from tfadmm.recipes.checks import check_against_model, planned_rates
from tfadmm.recipes.schema import AllocateSpec

RECIPE = """\
version: 1
name: auto
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 256, validation_split: 0.25, augment: false}
stages:
  - name: prune
    allocate: {rate: 20, method: sensitivity, layers: ["conv*", "fc*"]}
    admm: {epochs: 1, rho: 0.01, optimizer: {name: sgd, learning_rate: 0.05}}
    retrain: {epochs: 1, optimizer: {name: sgd, learning_rate: 0.05}}
"""


def _errors(text):
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, "x.yaml")
    return str(info.value).splitlines()


def test_allocate_maps_onto_tfadmm_allocate():
    (stage,) = parse_recipe(RECIPE, "x.yaml").stages
    assert stage.allocate == AllocateSpec(rate=20.0, method="sensitivity",
                                          layers=("conv*", "fc*"))
    assert stage.targets == ()
    text = RECIPE.replace(', method: sensitivity, layers: ["conv*", "fc*"]', "")
    assert parse_recipe(text, "x.yaml").stages[0].allocate == AllocateSpec(rate=20.0)


@pytest.mark.parametrize("old, new, expected", [
    ("rate: 20,", "rate: 0.5,",
     ["x.yaml:7: stages[0].allocate.rate: expected a number > 1. Received: 0.5"]),
    ("rate: 20,", "rate: 1,",
     ["x.yaml:7: stages[0].allocate.rate: expected a number > 1. Received: 1"]),
    ("method: sensitivity", "method: magic",
     ["x.yaml:7: stages[0].allocate.method: expected one of uniform, global, sensitivity. "
      "Received: 'magic'"]),
    ('layers: ["conv*", "fc*"]', "layers: conv*",
     ["x.yaml:7: stages[0].allocate.layers: expected a non-empty list of layer-name patterns. "
      "Received: 'conv*'"]),
    ("rate: 20,", "rate: 20, step: 2,",
     ["x.yaml:7: stages[0].allocate.step: expected one of the keys rate, method, layers. "
      "Received: 'step'"]),
    ("    allocate:", "    targets: {fc1: 0.5}\n    allocate:",
     ["x.yaml:6: stages[0]: expected exactly one of targets, allocate. "
      "Received: ['targets', 'allocate']"]),
    ('    allocate: {rate: 20, method: sensitivity, layers: ["conv*", "fc*"]}\n', "",
     ["x.yaml:6: stages[0]: expected exactly one of targets, allocate. Received: []"]),
    ("validation_split: 0.25", "validation_split: 0",
     ["x.yaml:7: stages[0].allocate.method: expected uniform or global when "
      "data.validation_split is 0 (sensitivity measures on the validation split). "
      "Received: 'sensitivity'"]),
])
def test_bad_allocate_is_one_line_with_file_line_path_and_value(old, new, expected):
    assert old in RECIPE
    assert _errors(RECIPE.replace(old, new)) == expected


def test_patterns_that_match_nothing_are_caught_against_the_model():
    recipe = parse_recipe(RECIPE.replace('"fc*"', '"dense*"'), "x.yaml")
    with pytest.raises(RecipeError) as info:
        check_against_model(recipe)
    assert str(info.value) == (
        "x.yaml:7: stages[0].allocate.layers[1]: the pattern 'dense*' matches no compressible "
        "layer. Compressible layers: conv1, conv2, fc1, fc2"
    )


def test_planned_rate_of_an_allocating_stage_is_its_rate():
    recipe = parse_recipe(RECIPE, "x.yaml")
    assert planned_rates(recipe, check_against_model(recipe)) == [pytest.approx(20)]


def _sparsities(path):
    model = keras.models.load_model(path)
    kernels = {layer.name: keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers
               if hasattr(layer, "kernel")}
    return {name: 1 - np.count_nonzero(w) / w.size for name, w in kernels.items()}


def test_run_writes_the_allocation_and_a_resumed_run_reuses_it(tmp_path, monkeypatch):
    recipe = parse_recipe(RECIPE, "x.yaml")
    out = tmp_path / "out"

    # A run stopped after the allocation was written, before its first checkpoint.
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "run_stage", stop)
    events = []
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, out, on_event=events.append, verbose=0)
    path = out / "stages" / "01-prune" / "allocation.json"
    allocation = Allocation.from_dict(json.loads(path.read_text()))
    assert allocation.method == "sensitivity" and allocation.rate == 20
    assert allocation.achieved_rate == pytest.approx(20, rel=0.01)
    assert set(allocation.curves.loss) == {"conv1", "conv2", "fc1", "fc2"}
    assert any(e.startswith("stage 1/1 prune: sensitivity 4/4: fc2 at 11 sparsities (")
               for e in events)
    png = path.with_name("sensitivity.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = png.stat().st_mtime_ns, png.read_bytes()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp

    # Another allocation of the same rate in the file: the resumed run must train towards it.
    edited = dict(allocation.sparsities, conv1=0.5, conv2=0.9, fc1=0.9565, fc2=0.9)
    record = json.loads(path.read_text())
    record["sparsities"] = edited
    path.write_text(json.dumps(record))
    monkeypatch.undo()

    def recompute(*args, **kwargs):
        raise AssertionError("a resumed run must not recompute its allocation")

    monkeypatch.setattr(runner_module, "plan_allocation", recompute)
    run_recipe(recipe, out, resume=True, verbose=0)
    assert (png.stat().st_mtime_ns, png.read_bytes()) == drawn  # kept, not redrawn
    got = _sparsities(out / "model.keras")
    assert got == pytest.approx(
        {name: np.floor(s * size) / size for (name, s), size in zip(
            edited.items(), (500, 25_000, 400_000, 5_000), strict=True)}, abs=1e-9)


def test_without_matplotlib_the_run_says_so_once_and_a_resumed_run_draws_it(
        tmp_path, monkeypatch):
    recipe = parse_recipe(RECIPE, "x.yaml")
    out = tmp_path / "out"

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "run_stage", stop)
    with monkeypatch.context() as blocked:
        blocked.setitem(sys.modules, "matplotlib", None)
        events = []
        with pytest.raises(KeyboardInterrupt):
            run_recipe(recipe, out, on_event=events.append, verbose=0)
    stage_dir = out / "stages" / "01-prune"
    assert (stage_dir / "allocation.json").exists()
    assert not (stage_dir / "sensitivity.png").exists()
    assert [e for e in events if "sensitivity.png" in e] == [
        "stage 1/1 prune: sensitivity.png not drawn: matplotlib is not installed "
        "(pip install 'tfadmm[plot]')"]

    # matplotlib installed since: the resumed run draws the missing PNG from allocation.json.
    events = []
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, out, resume=True, on_event=events.append, verbose=0)
    assert (stage_dir / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any("sensitivity" in e and "sparsities" in e for e in events)  # not remeasured
