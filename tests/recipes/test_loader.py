import pytest

from tfadmm import NMSparsity, Sparsity
from tfadmm.errors import RecipeError
from tfadmm.recipes import apply_overrides, load_recipe, parse_recipe

GOOD = """\
version: 1
name: demo
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 512}
defaults:
  admm: {epochs: 2, rho: 1e-3}
  retrain: {epochs: 1}
  optimizer: {name: adam, learning_rate: 1e-3}
stages:
  - name: one
    targets:
      conv*: {sparsity: 0.5}
      fc1: 0.9
  - name: two
    targets:
      conv*: {sparsity: 0.8}
      fc1: {n_m: [1, 16]}
    admm: {epochs: 3, update_every_steps: 5}
    retrain: {optimizer: {learning_rate: 1e-4, schedule: cosine}}
"""


def _errors(text, overrides=()):
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, "x.yaml", overrides)
    return str(info.value).splitlines()


def test_good_recipe_maps_onto_the_api():
    recipe = parse_recipe(GOOD, "x.yaml")
    assert recipe.name == "demo" and recipe.model.zoo == "lenet5"
    assert recipe.data.batch_size == 64 and recipe.data.take == 512
    one, two = recipe.stages
    assert one.target_dict == {"conv*": Sparsity(0.5), "fc1": Sparsity(0.9)}
    assert two.target_dict == {"conv*": Sparsity(0.8), "fc1": NMSparsity(1, 16)}
    assert (one.admm.epochs, one.admm.rho, one.admm.update_every_steps) == (2, 1e-3, None)
    assert (two.admm.epochs, two.admm.update_every_steps) == (3, 5)
    assert two.retrain.epochs == 1
    assert two.retrain.optimizer.learning_rate == 1e-4
    assert two.retrain.optimizer.schedule == "cosine"
    assert two.retrain.optimizer.name == "adam"  # from defaults.optimizer
    assert one.keep_previous is True


def test_every_error_in_one_pass_with_file_line_path_and_value():
    text = GOOD.replace("conv*: {sparsity: 0.5}", "conv*: {sparsity: 1.5}").replace(
        "rho: 1e-3", "rho: -1"
    ).replace("name: two", "name: one").replace("batch_size: 64", "batch_size: 64, shuffle: 3")
    assert _errors(text) == [
        "x.yaml:4: data.shuffle: expected one of the keys name, source, path, batch_size, "
        "validation_split, take, augment, normalize. Received: 'shuffle'",
        "x.yaml:6: defaults.admm.rho: expected a number > 0. Received: -1",
        "x.yaml:12: stages[0].targets.conv*.sparsity: expected a number in [0, 1). "
        "Received: 1.5",
        "x.yaml:14: stages[1].name: expected a stage name not used before. Received: 'one'",
    ]


def test_sparsity_may_not_decrease_between_stages():
    text = GOOD.replace("conv*: {sparsity: 0.8}", "conv*: {sparsity: 0.3}")
    assert _errors(text) == [
        "x.yaml:16: stages[1].targets.conv*.sparsity: expected at least 0.5 (its sparsity in "
        "stage 'one'): pruned weights stay pruned. Received: 0.3"
    ]


def test_target_specs():
    text = GOOD.replace("fc1: 0.9", "fc1: {sparsity: 0.9, n_m: [2, 4]}").replace(
        "fc1: {n_m: [1, 16]}", "fc1: {n_m: [4, 4]}"
    ).replace("conv*: {sparsity: 0.8}", "conv*: {}")
    assert _errors(text) == [
        "x.yaml:13: stages[0].targets.fc1.n_m: expected either sparsity or n_m, not both. "
        "Received: [2, 4]",
        "x.yaml:16: stages[1].targets.conv*: expected a sparsity, n_m, filters, channels, "
        "binary, ternary, bits or power_of_two target. Received: {}",
        "x.yaml:17: stages[1].targets.fc1.n_m: expected a pair [n, m] of integers with "
        "1 <= n < m. Received: [4, 4]",
    ]


def test_structure_errors():
    assert _errors("version: 2\nmodel: {zoo: lenet5, file: a.keras}\ndata: {name: x}\n") == [
        "x.yaml:1: version: expected 1. Received: 2",
        "x.yaml:1: stages: expected a non-empty list of stages. Received: None",
        "x.yaml:2: model: expected exactly one of zoo, file, function. "
        "Received: ['file', 'zoo']",
    ]
    assert _errors("- 1\n- 2\n") == ["x.yaml:1: (document): expected a mapping. Received: [1, 2]"]


def test_yaml_syntax_and_duplicate_keys():
    assert _errors("version: 1\nname: [a\n") == [
        "x.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    assert _errors("version: 1\nversion: 1\n") == ["x.yaml:2: duplicate key 'version'"]


def test_optimizer_errors():
    text = GOOD.replace("{name: adam, learning_rate: 1e-3}", "{name: adagrad, momentum: 0.9}")
    assert _errors(text) == [
        "x.yaml:8: defaults.optimizer.name: expected one of adam, adamw, sgd, rmsprop. "
        "Received: 'adagrad'",
    ]


def test_overrides_by_index_and_stage_name():
    recipe = parse_recipe(GOOD, "x.yaml", ["stages.0.admm.epochs=7", "stages.two.retrain.epochs=4",
                                           "data.take=null", "stages.1.admm.rho=2e-3"])
    assert recipe.stages[0].admm.epochs == 7
    assert recipe.stages[1].retrain.epochs == 4
    assert recipe.stages[1].admm.rho == 2e-3
    assert recipe.data.take is None


def test_override_errors():
    with pytest.raises(RecipeError) as info:
        apply_overrides({"stages": [{"name": "a"}]}, ["stages.b.admm.epochs=1"])
    assert str(info.value) == (
        "--set stages.b.admm.epochs: expected a list index 0..0 or a stage name at 'stages.b'. "
        "Received: 'b'"
    )
    with pytest.raises(RecipeError) as info:
        apply_overrides({}, ["epochs"])
    assert str(info.value) == "--set: expected KEY=VALUE. Received: 'epochs'"
    assert _errors(GOOD, ["stages.0.admm.epochs=many"]) == [
        "x.yaml:10: stages[0].admm.epochs: expected an integer >= 0. Received: 'many'"
    ]


def test_missing_file(tmp_path):
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such recipe file"


MINIMAL = """\
version: 1
model: {zoo: lenet5}
data: {name: fashion_mnist}
stages:
  - name: prune
    targets: {fc1: 0.9}
    admm: {epochs: 4}
    retrain: {epochs: 4}
"""


def test_a_recipe_with_only_targets_and_epochs_gets_the_engines_defaults():
    import tfadmm

    stage = parse_recipe(MINIMAL, "x.yaml").stages[0]
    assert stage.admm == tfadmm.ADMMPhase(epochs=4)
    assert stage.retrain == tfadmm.RetrainPhase(epochs=4)
    assert stage.retrain.keep_best and stage.retrain.optimizer.schedule == "cosine"
    assert stage.distill == "auto"


def test_distill_and_keep_best_from_defaults_and_stages():
    text = MINIMAL.replace("stages:", "defaults: {distill: {temperature: 2}}\nstages:").replace(
        "retrain: {epochs: 4}", "retrain: {epochs: 4, keep_best: false}\n    distill: "
        "{alpha: 0.25, teacher: baseline}")
    stage = parse_recipe(text, "x.yaml").stages[0]
    assert (stage.distill.temperature, stage.distill.alpha, stage.distill.teacher) == (
        2.0, 0.25, "baseline")
    assert stage.retrain.keep_best is False
    on = parse_recipe(MINIMAL.replace("stages:", "defaults: {distill: true}\nstages:"), "x.yaml")
    assert on.stages[0].distill.temperature == 4.0 and on.stages[0].distill.alpha == 0.5
    off = parse_recipe(MINIMAL.replace("stages:", "defaults: {distill: true}\nstages:").replace(
        "retrain: {epochs: 4}", "retrain: {epochs: 4}\n    distill: false"), "x.yaml")
    assert off.stages[0].distill is None
    auto = parse_recipe(MINIMAL.replace("stages:", "defaults: {distill: true}\nstages:").replace(
        "retrain: {epochs: 4}", "retrain: {epochs: 4}\n    distill: auto"), "x.yaml")
    assert auto.stages[0].distill == "auto"


def test_bad_distill_settings_name_the_line_and_value():
    text = MINIMAL.replace("retrain: {epochs: 4}", "retrain: {epochs: 4, keep_best: 1}\n"
                           "    distill: {alpha: 2, teacher: dense}")
    assert _errors(text) == [
        "x.yaml:8: stages[0].retrain.keep_best: expected true or false. Received: 1",
        "x.yaml:9: stages[0].distill.alpha: expected a number in [0, 1]. Received: 2",
        "x.yaml:9: stages[0].distill.teacher: expected one of previous, baseline. "
        "Received: 'dense'",
    ]
    assert _errors(MINIMAL.replace("stages:", "defaults: {distill: 3}\nstages:")) == [
        "x.yaml:4: defaults.distill: expected a mapping (temperature, alpha, teacher), true, "
        "false or auto. Received: 3"]


def test_recalibrate_bn_from_defaults_and_stages():
    assert parse_recipe(MINIMAL, "x.yaml").stages[0].retrain.recalibrate_bn is False
    text = MINIMAL.replace("stages:", "defaults: {retrain: {recalibrate_bn: true}}\nstages:")
    assert parse_recipe(text, "x.yaml").stages[0].retrain.recalibrate_bn is True
    off = text.replace("retrain: {epochs: 4}", "retrain: {epochs: 4, recalibrate_bn: false}")
    assert parse_recipe(off, "x.yaml").stages[0].retrain.recalibrate_bn is False
    bad = MINIMAL.replace("retrain: {epochs: 4}", "retrain: {epochs: 4, recalibrate_bn: 3}")
    assert _errors(bad) == [
        "x.yaml:8: stages[0].retrain.recalibrate_bn: expected true or false. Received: 3"]


def test_bits_bounds_come_from_the_constructors():
    from tfadmm import PowerOfTwo, Quantize

    text = GOOD.replace("fc1: 0.9", "fc1: {power_of_two: 7}")
    assert PowerOfTwo.BITS == (2, 6) and Quantize.BITS == (2, 8)
    assert _errors(text) == [
        "x.yaml:13: stages[0].targets.fc1.power_of_two: expected an integer in [2, 6]. "
        "Received: 7"
    ]
    recipe = parse_recipe(GOOD.replace("fc1: 0.9", "fc1: {power_of_two: 6}"), "x.yaml")
    assert recipe.stages[0].target_dict["fc1"] == PowerOfTwo(6)


def test_a_constructor_error_becomes_a_recipe_error_at_its_line(monkeypatch):
    from tfadmm import constraints

    def refuse(self, sparsity):
        raise ValueError(f"Invalid `sparsity`: refused. Received: sparsity={sparsity}")

    monkeypatch.setattr(constraints.Sparsity, "__init__", refuse)
    assert _errors(GOOD)[:2] == [
        "x.yaml:12: stages[0].targets.conv*.sparsity: Invalid `sparsity`: refused. "
        "Received: sparsity=0.5",
        "x.yaml:13: stages[0].targets.fc1.sparsity: Invalid `sparsity`: refused. "
        "Received: sparsity=0.9",
    ]


def test_data_normalize_maps_onto_data_load():
    assert parse_recipe(GOOD, "x.yaml").data.normalize is True
    text = GOOD.replace("take: 512}", "take: 512, normalize: false}")
    assert parse_recipe(text, "x.yaml").data.normalize is False
    assert _errors(GOOD.replace("take: 512}", "take: 512, normalize: 0}")) == [
        "x.yaml:4: data.normalize: expected true or false. Received: 0"
    ]


def test_structured_targets():
    from tfadmm import ChannelSparsity, FilterSparsity, Quantize

    text = GOOD.replace("conv*: {sparsity: 0.5}", "conv*: {filters: 0.5}").replace(
        "fc1: 0.9", "fc1: {channels: 0.25}"
    ).replace("conv*: {sparsity: 0.8}", "conv*: {filters: 0.75, bits: 8}")
    one, two = parse_recipe(text, "x.yaml").stages
    assert one.target_dict == {"conv*": FilterSparsity(0.5), "fc1": ChannelSparsity(0.25)}
    assert two.target_dict["conv*"] == FilterSparsity(0.75) & Quantize(8)


def test_structured_target_errors():
    text = GOOD.replace("conv*: {sparsity: 0.5}", "conv*: {filters: 1.5}").replace(
        "fc1: 0.9", "fc1: {channels: 0.5, sparsity: 0.5}"
    ).replace("conv*: {sparsity: 0.8}", "conv*: {filters: 0.5, channels: 0.5}")
    assert _errors(text) == [
        "x.yaml:12: stages[0].targets.conv*.filters: expected a number in [0, 1). "
        "Received: 1.5",
        "x.yaml:13: stages[0].targets.fc1.channels: expected one of sparsity, n_m, filters, "
        "channels, not channels and sparsity. Received: 0.5",
        "x.yaml:16: stages[1].targets.conv*.filters: expected one of sparsity, n_m, filters, "
        "channels, not channels and filters. Received: 0.5",
    ]


def test_rho_final_from_defaults_or_a_stage():
    text = GOOD.replace("admm: {epochs: 2, rho: 1e-3}",
                        "admm: {epochs: 2, rho: 1e-3, rho_final: 0.05}")
    one, two = parse_recipe(text, "x.yaml").stages
    assert one.admm.rho_final == two.admm.rho_final == 0.05
    assert parse_recipe(GOOD, "x.yaml").stages[0].admm.rho_final is None


def test_rho_final_errors_name_the_line_and_value():
    both = GOOD.replace("admm: {epochs: 3, update_every_steps: 5}",
                        "admm: {epochs: 3, rho_final: 0.05, rho_multiplier: 1.2}")
    assert _errors(both) == [
        "x.yaml:18: stages[1].admm.rho_final: expected rho_final or rho_multiplier, not both "
        "(rho_final sets the growth). Received: 1.2"
    ]
    below = GOOD.replace("admm: {epochs: 3, update_every_steps: 5}",
                         "admm: {epochs: 3, rho_final: 1e-4}")
    assert _errors(below) == [
        "x.yaml:18: stages[1].admm.rho_final: expected a number >= rho (0.001). Received: 0.0001"
    ]
