"""benchmarks/resnet.py: its per-layer targets, its Markdown, and (slow) its --quick run."""

import json
import math
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import resnet  # noqa: E402


def _achieved(sparsities):
    sizes = resnet.layer_sizes()
    kept = sum(sizes[n] - math.floor(s * sizes[n]) for n, s in sparsities.items())
    return sum(sizes.values()) / kept


@pytest.mark.parametrize("rate", [2, 4, 8, 16])
def test_rate_over_block_convs_and_fc_is_reached(rate):
    sparsities = resnet.sparsities(rate)
    assert set(sparsities) == set(resnet.PRUNED)
    assert "conv1" not in sparsities
    assert _achieved(sparsities) == pytest.approx(rate, rel=2e-3)


def test_fc_is_pruned_lighter_like_the_shipped_recipe_at_8x():
    sparsities = resnet.sparsities(8)
    # The customary table (recipes/resnet20_fmnist_8x.yaml before it allocated): 0.877, fc 0.5.
    assert sparsities["conv3_block2_1_conv"] == pytest.approx(0.877, abs=2e-3)
    assert sparsities["fc"] == pytest.approx(0.5, abs=0.01)
    assert all(sparsities["fc"] < s for n, s in sparsities.items() if n != "fc")


def test_quantization_targets_keep_conv1_and_fc_at_8_bits():
    targets = resnet.quantization_targets("ternary")
    assert targets["conv1"] == targets["fc"] == {"bits": 8, "per_channel": True}
    assert all(targets[n] == {"ternary": True, "per_channel": True} for n in resnet.BLOCK_CONVS)


def _record(method, rate, accuracy):
    return {"method": method, "target_rate": rate, "rate": rate, "test_accuracy": accuracy,
            "val_accuracy": accuracy, "seconds": 60.0, "baseline_test_accuracy": 0.9}


def test_render_names_every_part_and_the_command():
    result = {
        "settings": {"take": 2000, "budget": 2, "seed": 0, "baseline_epochs": 2,
                     "cost_repeats": 1},
        "baseline": {"test_accuracy": 0.9, "val_accuracy": 0.91},
        "commands": ["python benchmarks/resnet.py --quick"],
        "pruning": {f"{m}-8x": _record(m, 8.0, 0.88) for m in resnet.METHODS},
        "quantization": {"ternary": {"level": "ternary", "ptq_test_accuracy": 0.5,
                                     "test_accuracy": 0.85, "distinct": 3, "bytes": 1000,
                                     "dense_bytes": 8000}},
        "cost": {"epochs": {"plain fit": [10.0, 1.0], "ADMM phase": [11.0, 1.1]},
                 "update": [268_000, 0.01], "repeats": 1},
        "export": {"target": "8x", "compressed SavedModel": 12_345, "max abs diff": "1e-06"},
    }
    text = resnet.render(result)
    assert "`python benchmarks/resnet.py --quick`" in text
    for method in resnet.METHODS:
        assert f"| {method} | 88.00% (8x, +2.00) |" in text
    assert "equal within 0.1 %" in text
    assert "| ternary | 50.00% | 85.00% | 5.00 | 3 | 1,000 | 8.0x |" in text
    assert "| ADMM phase | 11.00 | 1.100x |" in text
    assert "12,345" in text


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """`--quick` on 300 images: every part, the tfmot peer included (minutes on 2 cores)."""
    if not (resnet.common.CACHE / "tfmot-venv" / "bin" / "python").exists():
        pytest.skip("no tfmot virtualenv in benchmarks/cache")
    out = tmp_path / "resnet.json"
    result = resnet.main(["--quick", "--take", "300", "--out", str(out)])
    assert json.loads(out.read_text())["settings"]["take"] == 300
    assert set(result["pruning"]) == {f"{m}-8x" for m in resnet.METHODS}
    assert set(result["quantization"]) == set(resnet.LEVELS)
    peer = result["pruning"]["tfmot-8x"]
    assert peer["baseline_test_accuracy"] == pytest.approx(
        result["baseline"]["test_accuracy"], abs=1e-3)
    assert peer["baseline_logits_max_abs_diff"] < 1e-3
    assert result["export"]["Keras test accuracy"] == pytest.approx(
        result["export"]["TFLite test accuracy"], abs=1e-3)
    assert "ResNet-20" in resnet.render(result)


def test_render_levers_lists_each_setting_beside_the_tables_tfadmm_cells(tmp_path):
    lever = {"settings": {"overrides": ["defaults.admm.rho_multiplier=1.3"], "seed": 0},
             "commands": ["python benchmarks/resnet.py --set defaults.admm.rho_multiplier=1.3"],
             "pruning": {"tfadmm-8x": _record("tfadmm", 8.0, 0.87)}}
    (tmp_path / "rho13.json").write_text(json.dumps(lever))
    again = {**lever, "settings": {**lever["settings"], "seed": 1}, "commands": [],
             "pruning": {"tfadmm-8x": _record("tfadmm", 8.0, 0.86)}}
    (tmp_path / "rho13-seed1.json").write_text(json.dumps(again))
    result = {"pruning": {f"{m}-{r:g}x": _record(m, r, 0.85)
                          for m in ("tfadmm", "tfmot") for r in (4.0, 8.0)}}

    lines = resnet.render_levers(result, tmp_path)

    assert lines[1] == ("Settings tried (`python benchmarks/resnet.py --set "
                        "defaults.admm.rho_multiplier=1.3`):")
    assert lines[-3:] == [
        "| 8x | tfadmm (table above) | 85.00% | 85.00% |",
        "| 8x | tfadmm, defaults.admm.rho_multiplier=1.3 | 87.00% | 87.00% |",
        "| 8x | tfadmm, defaults.admm.rho_multiplier=1.3, seed 1 | 86.00% | 86.00% |",
    ]


def test_render_levers_is_empty_without_results(tmp_path):
    assert resnet.render_levers({"pruning": {}}, tmp_path) == []


def test_allocation_methods_leave_the_per_layer_rates_to_tfadmm():
    stages = resnet.pruning_stages("tfadmm-sensitivity", 8)
    assert stages == [
        ("prune-4x", {"allocate": {"rate": 4.0, "method": "sensitivity",
                                   "layers": list(resnet.PRUNED)}}),
        ("prune-8x", {"allocate": {"rate": 8.0, "method": "sensitivity",
                                   "layers": list(resnet.PRUNED)}}),
    ]
    hand = resnet.pruning_stages("tfadmm", 8)
    assert [name for name, _ in hand] == ["prune-4x", "prune-8x"]
    assert hand[1][1] == {n: {"sparsity": float(s)} for n, s in resnet.sparsities(8).items()}


def _run(seed, cells, take=10000):
    return {"settings": {"take": take, "budget": 10, "seed": seed, "baseline_epochs": 12,
                         "cost_repeats": 2},
            "commands": [f"python benchmarks/resnet.py --seed {seed}"],
            "pruning": {f"{m}-{r:g}x": _record(m, r, a) for m, r, a in cells}}


def test_render_seeds_gives_each_seed_and_the_mean_of_the_cells_run_again():
    main = _run(0, [("tfadmm", 4.0, 0.88), ("tfmot", 4.0, 0.90), ("tfmot", 8.0, 0.86)])
    second = _run(1, [("tfmot", 4.0, 0.89), ("tfmot", 8.0, 0.87), ("tfadmm-global", 8.0, 0.85)])
    lines = resnet.render_seeds(main, [second])
    assert "`python benchmarks/resnet.py --seed 1`" in lines[1]
    assert lines[3:] == [
        "| rate | method | seed 0 | seed 1 | mean |",
        "|--:|---|--:|--:|--:|",
        "| 4x | tfmot | 90.00% (90.00%) | 89.00% (89.00%) | 89.50% (89.50%) |",
        "| 8x | tfadmm-global | - | 85.00% (85.00%) | 85.00% (85.00%) |",
        "| 8x | tfmot | 86.00% (86.00%) | 87.00% (87.00%) | 86.50% (86.50%) |",
    ]
    assert resnet.render_seeds(main, []) == []


def test_same_grid_ignores_only_the_seed_and_the_cost_repeats():
    a, b = _run(0, [])["settings"], _run(1, [])["settings"]
    assert resnet.same_grid(a, {**b, "cost_repeats": 5})
    assert not resnet.same_grid(a, _run(1, [], take=20000)["settings"])


def test_a_cost_rerun_with_more_repeats_keeps_the_other_cells(tmp_path):
    args = resnet.parse_args(["--take", "10000", "--budget", "10", "--baseline-epochs", "12",
                              "--cost-repeats", "5"])
    old = {**resnet.settings(args), "cost_repeats": 2}
    pruned = tmp_path / "pruning-tfmot-8x.json"
    pruned.write_text(json.dumps({"settings": old, "record": {}}))
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"settings": old, "record": {"repeats": 2}}))
    assert resnet._kept(pruned, args) is not None
    assert resnet._kept(cost, args) is None
    cost.write_text(json.dumps({"settings": resnet.settings(args), "record": {"repeats": 5}}))
    assert resnet._kept(cost, args) is not None
    assert resnet._kept(pruned, resnet.parse_args(["--take", "20000"])) is None


def test_stages_halve_the_rate_from_stage_to_stage_ending_at_the_rate():
    assert resnet.stage_rates(8, 1) == [8]
    assert resnet.stage_rates(8) == [4, 8]
    assert resnet.stage_rates(16, 3) == [4, 8, 16]
    assert [name for name, _ in resnet.pruning_stages("tfadmm-global", 4, stages=1)] == [
        "prune-4x"]


def test_settings_name_the_stages_only_when_not_the_default():
    assert "stages" not in resnet.settings(resnet.parse_args([]))
    assert resnet.settings(resnet.parse_args(["--stages", "1"]))["stages"] == 1


def test_render_levers_names_a_stage_count_other_than_the_default(tmp_path):
    lever = {"settings": {"seed": 0, "stages": 1},
             "commands": ["python benchmarks/resnet.py --stages 1"],
             "pruning": {"tfadmm-global-4x": _record("tfadmm-global", 4.0, 0.89)}}
    (tmp_path / "one-stage.json").write_text(json.dumps(lever))
    result = {"pruning": {"tfadmm-global-4x": _record("tfadmm-global", 4.0, 0.88)}}

    lines = resnet.render_levers(result, tmp_path)

    assert lines[-2:] == [
        "| 4x | tfadmm-global (table above) | 88.00% | 88.00% |",
        "| 4x | tfadmm-global, 1 stage(s) | 89.00% | 89.00% |",
    ]


def test_render_gives_the_split_sizes_and_their_sampling_errors():
    result = {"settings": {"take": 10000, "validation_split": 0.3, "test": "all", "budget": 10,
                           "seed": 0, "baseline_epochs": 12},
              "baseline": {"test_accuracy": 0.9, "val_accuracy": 0.91}}
    text = resnet.render(result)
    assert ("Validation is the last 4,286 training images (`validation_split: 0.3`), which every "
            "choice reads; test is all 10,000 test images") in text
    assert "about 0.3%, its validation accuracy 0.5%" in text


def test_render_of_a_result_from_before_the_split_settings_gives_its_shrunk_splits():
    result = {"settings": {"take": 10000, "budget": 10, "seed": 0, "baseline_epochs": 12},
              "baseline": {"test_accuracy": 0.9, "val_accuracy": 0.91}}
    text = resnet.render(result)
    assert ("validation is 1,112 held-out training images and test the first 1,667 test "
            "images") in text


def test_settings_name_the_validation_split_and_the_whole_test_set():
    settings = resnet.settings(resnet.parse_args(["--validation-split", "0.2"]))
    assert settings["validation_split"] == 0.2
    assert settings["test"] == "all"
    assert resnet.parse_args([]).validation_split == resnet.VALIDATION_SPLIT


def test_settings_name_tfmots_prune_fraction_only_when_given():
    assert "prune_fraction" not in resnet.settings(resnet.parse_args([]))
    args = resnet.parse_args(["--prune-fraction", "0.3"])
    assert resnet.settings(args)["prune_fraction"] == 0.3


def test_render_levers_names_tfmots_prune_fraction_beside_the_tables_tfmot_cell(tmp_path):
    lever = {"settings": {"seed": 1, "prune_fraction": 0.3},
             "commands": ["python benchmarks/resnet.py --prune-fraction 0.3"],
             "pruning": {"tfmot-4x": _record("tfmot", 4.0, 0.89)}}
    (tmp_path / "tfmot-ramp.json").write_text(json.dumps(lever))
    result = {"pruning": {f"{m}-4x": _record(m, 4.0, 0.88) for m in ("tfadmm", "tfmot")}}

    (tmp_path / "no-change.json").write_text(json.dumps(  # tfmot has no stages: left out
        {**lever, "settings": {"seed": 0, "stages": 1}, "commands": []}))

    lines = resnet.render_levers(result, tmp_path)

    assert lines[-2:] == [
        "| 4x | tfmot (table above) | 88.00% | 88.00% |",
        "| 4x | tfmot, sparsity ramped over 30% of the budget, seed 1 | 89.00% | 89.00% |",
    ]


def test_render_tuned_keeps_each_seeds_best_validation_setting_for_each_tool(tmp_path):
    def record(method, val, test):
        return {**_record(method, 4.0, test), "val_accuracy": val}

    runs = [{"settings": {"take": 10000, "budget": 10, "seed": seed, "baseline_epochs": 12},
             "pruning": {"tfadmm-4x": record("tfadmm", 0.88, 0.86 + seed / 100),
                         "tfmot-4x": record("tfmot", 0.89, 0.87),
                         # seed 0: tfmot's distillation variant wins on validation
                         "tfmot-distill-4x": record("tfmot-distill", 0.90 - seed / 10, 0.91),
                         "tfadmm-8x": _record("tfadmm", 8.0, 0.8)}}
            for seed in (0, 1)]
    levers = {  # seed 0: one stage wins on validation; seed 1: the default does
        "one-stage.json": ({"stages": 1, "seed": 0}, record("tfadmm", 0.90, 0.85)),
        "one-stage-seed1.json": ({"stages": 1, "seed": 1}, record("tfadmm", 0.87, 0.95)),
        "ramp.json": ({"prune_fraction": 0.3, "seed": 0}, record("tfmot", 0.88, 0.95)),
        "ramp-seed1.json": ({"prune_fraction": 0.3, "seed": 1}, record("tfmot", 0.90, 0.89)),
        # another grid, and a lever that changes nothing for tfmot: left out
        "other.json": ({"stages": 1, "seed": 0, "budget": 20}, record("tfadmm", 0.99, 0.99)),
        "no-change.json": ({"stages": 1, "seed": 0}, record("tfmot", 0.99, 0.99)),
    }
    for name, (changed, r) in levers.items():
        settings = {**runs[0]["settings"], **changed}
        (tmp_path / name).write_text(json.dumps({"settings": settings,
                                                 "pruning": {f"{r['method']}-4x": r}}))

    lines = resnet.render_tuned(runs[0], runs[1:], tmp_path)

    assert lines[-3:] == [
        "| rate | tfadmm | kept | tfmot | kept | lead |",
        "|--:|--:|---|--:|---|--:|",
        "| 4x | 86.00% (89.00%) | 1 stage(s) / default | 90.00% (90.00%) | tfmot-distill / "
        "sparsity ramped over 30% of the budget | -4.00 |",
    ]


def test_render_tuned_is_empty_without_a_choice_for_both_tools(tmp_path):
    run = {"settings": {"take": 10000, "budget": 10, "seed": 0, "baseline_epochs": 12},
           "pruning": {"tfadmm-4x": _record("tfadmm", 4.0, 0.88)}}
    assert resnet.render_tuned(run, [], tmp_path) == []


def test_a_prune_fraction_outside_the_budget_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        resnet.parse_args(["--prune-fraction", "1.5"])
    assert exited.value.code == 2
    _prog, message = capsys.readouterr().err.splitlines()[-1].split(": ", 1)
    assert message == ("error: argument --prune-fraction: expected a share of the budget in "
                       "(0, 1]. Received: 1.5")
