"""benchmarks/structured.py: its command line, its kept cells and its Markdown."""

import json
import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import structured  # noqa: E402

_LATENCY = {"keras_b1": 1.0, "keras_b64": 4.0, "tflite_b1": 0.2, "tflite_b64": 4.5}


def _row(method, goal, accuracy, flops):
    return {"model": "resnet20", "method": method, "goal": goal, "test_accuracy": accuracy,
            "flops": flops, "flops_reduction": 1000 / flops, "params": flops // 10,
            "params_reduction": 1000 / flops, "latency_ms": _LATENCY}


def _entry(command="python benchmarks/structured.py --models resnet20 --take 10000"):
    return {"settings": {"take": 10000, "budget": 10, "seed": 0, "baseline_epochs": 12,
                         "goals": [2.0], "repeats": 50},
            "command": command, "date": "2026-12-01",
            "rows": [_row("dense", 1.0, 0.8746, 1000), _row("tfadmm", 2.0, 0.87, 500)]}


def test_take_names_the_baseline_cache_shared_with_resnet_py():
    args = structured.parse_args(["--models", "resnet20", "--take", "10000"])
    assert args.tag == "-take10000"
    assert structured.parse_args([]).tag == ""


def test_command_reproduces_the_arguments():
    args = structured.parse_args(["--models", "resnet20", "--take", "10000", "--budget", "10",
                                  "--baseline-epochs", "12", "--goals", "2"])
    assert structured.command(args) == (
        "python benchmarks/structured.py --models resnet20 --goals 2 --budget 10 "
        "--baseline-epochs 12 --seed 0 --repeats 50 --take 10000")
    quick = structured.parse_args(["--quick", "--models", "lenet5"])
    assert structured.command(quick) == "python benchmarks/structured.py --models lenet5 --quick"
    assert quick.out.name == "structured-quick.json"


def test_render_states_the_methods_each_models_settings_then_one_table():
    text = structured.render({"resnet20": _entry()})
    lines = text.splitlines()
    assert lines[0].startswith("tfadmm: a recipe with `filters: s` on the layers listed below")
    assert lines[2] == (
        "- **resnet20** (`python benchmarks/structured.py --models resnet20 --take 10000`, "
        "2026-12-01): the first 10,000 Fashion-MNIST training images, seed 0, filters pruned in "
        + ", ".join(structured.TARGETS["resnet20"]) + "; dense baseline 87.46% test (12 epochs); "
        "10 epochs after it for each method; latency medians of 50 runs.")
    assert lines[-2:] == [
        "| resnet20 | dense | 1x | 0.8746 | 1,000 | 1.00x | 100 | 1.00x | 1.00 | 4.00 | 0.200 "
        "| 4.50 |",
        "| resnet20 | tfadmm | 2x | 0.8700 | 500 | 2.00x | 50 | 2.00x | 1.00 | 4.00 | 0.200 "
        "| 4.50 |",
    ]


def test_read_result_is_empty_without_a_file_and_keeps_every_model(tmp_path):
    path = tmp_path / "structured.json"
    assert structured.read_result(path) == {}
    path.write_text(json.dumps({"lenet5": _entry("a"), "resnet20": _entry("b")}))
    assert list(structured.read_result(path)) == ["lenet5", "resnet20"]
