"""benchmarks/run_all.py: the longer-budget table beside the main pruning table."""

import json
import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import run_all  # noqa: E402


def _record(rate, budget, accuracy, method="tfadmm", seed=0):
    return {"method": method, "target_rate": rate, "seed": seed, "budget": budget,
            "rate": rate, "test_accuracy": accuracy, "val_accuracy": accuracy + 0.001,
            "seconds": 100.0 * budget}


def test_render_longer_puts_each_long_cell_under_its_short_one(tmp_path):
    path = tmp_path / "pruning-long.json"
    path.write_text(json.dumps({"budget": 160, "records": [_record(246, 160, 0.89),
                                                           _record(100, 160, 0.905)]}))
    cells = run_all._cells([_record(246, 30, 0.88), _record(100, 30, 0.9)])

    lines = run_all.render_longer(cells, 0.91, path)

    assert "the paper's 40 ADMM + 40 retraining epochs a stage" in lines[1]
    assert ("`python benchmarks/pruning.py --rates 100 246 --seeds 0 --methods tfadmm "
            "--budget 160 --out benchmarks/results/pruning-long.json`") in lines[1]
    assert lines[-4:] == [
        "| 100x | tfadmm | 0 | 30 | 90.00% | 1.00 | 90.10% | 100.0x | 3000 |",
        "| 100x | tfadmm | 0 | 160 | 90.50% | 0.50 | 90.60% | 100.0x | 16000 |",
        "| 246x | tfadmm | 0 | 30 | 88.00% | 3.00 | 88.10% | 246.0x | 3000 |",
        "| 246x | tfadmm | 0 | 160 | 89.00% | 2.00 | 89.10% | 246.0x | 16000 |",
    ]


def test_render_longer_is_empty_without_its_file(tmp_path):
    assert run_all.render_longer({}, 0.91, tmp_path / "absent.json") == []


def test_render_allocation_means_the_common_seeds_and_names_a_method_with_fewer():
    kept = {"kept": {"conv1": 1.0, "conv2": 0.5, "fc1": 0.01, "fc2": 0.2}}
    records = [
        {**_record(40, 30, 0.90, "tfadmm-plain", 0), **kept},
        {**_record(40, 30, 0.92, "tfadmm-plain", 1), **kept},
        {**_record(40, 30, 0.91, "tfadmm-global", 0), **kept},
        {**_record(40, 30, 0.93, "tfadmm-global", 1), **kept},
        {**_record(40, 30, 0.85, "tfadmm-uniform", 0), **kept},
    ]

    class Args:
        budget = 30
        allocation_rates = [40]
        allocation_json = run_all.common.records("allocation.json")

    lines = run_all.render_allocation(records, {"test_accuracy": 0.95}, Args).splitlines()

    assert ("Made by `python benchmarks/pruning.py --rates 40 --seeds 0 1 --methods tfadmm-plain "
            "tfadmm-uniform tfadmm-global tfadmm-sensitivity --budget 30 --jobs 2 --out "
            "benchmarks/results/allocation.json`") in lines[0]

    assert lines[-3:] == [
        "| 40x | hand | 91.00% (90.00% / 92.00%) | 4.00 | 91.10% | 40.0x | "
        "100.00% / 50.00% / 1.00% / 20.00% |",
        "| 40x | uniform (seed 0 only) | 85.00% | 10.00 | 85.10% | 40.0x | "
        "100.00% / 50.00% / 1.00% / 20.00% |",
        "| 40x | global | 92.00% (91.00% / 93.00%) | 3.00 | 92.10% | 40.0x | "
        "100.00% / 50.00% / 1.00% / 20.00% |",
    ]
