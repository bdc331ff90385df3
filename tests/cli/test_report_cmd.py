import json

import pytest
from click.testing import CliRunner

from cli.main import main
from tests._tiny_models import pruned


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    pruned()[1].save(path / "model.keras")
    history = {
        "baseline_accuracy": 0.99,
        "stages": [{"name": "prune", "accuracy_before": 0.99, "accuracy_after": 0.985}],
    }
    (path / "history.json").write_text(json.dumps(history))
    return path


def test_report_table_of_a_keras_file(run_dir):
    result = CliRunner().invoke(main, ["report", str(run_dir / "model.keras")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Compression report: tiny\n")
    assert "pruning rate (compressed kernels): 9.6x (288 weights -> 30 non-zeros)" in result.output


def test_report_json_of_a_run_directory_carries_the_history(run_dir):
    result = CliRunner().invoke(main, ["report", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["baseline_accuracy"] == 0.99
    assert data["stages"] == [
        {"stage": "prune", "accuracy_before": 0.99, "accuracy_after": 0.985,
         "start_val_accuracy": None, "chosen": None}
    ]
    assert data["totals"]["nonzeros"] == 30


def test_report_markdown(run_dir):
    result = CliRunner().invoke(main, ["report", str(run_dir), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| prune | 0.9900 | 0.9850 |" in result.output


def test_a_folder_that_is_not_a_run_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path}: not a run directory (no model.keras, no state.json): expected a "
        ".keras file or the directory of a finished `tfadmm run`\n"
    )


def test_an_unfinished_run_says_so(tmp_path):
    (tmp_path / "state.json").write_text("{}")
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path}: the run has not finished (no model.keras yet): continue it with "
        "`tfadmm run RECIPE --output DIR --resume`, or pass a .keras file\n"
    )


def test_unknown_format_is_a_usage_error(run_dir):
    result = CliRunner().invoke(main, ["report", str(run_dir), "--format", "html"])
    assert result.exit_code == 2
    assert "Invalid value for '--format': 'html' is not one of" in result.output


def test_runner_history_with_baseline_record(run_dir, tmp_path):
    (tmp_path / "model.keras").write_bytes((run_dir / "model.keras").read_bytes())
    history = {"baseline": {"val_accuracy": 0.98, "test_accuracy": 0.97}, "stages": []}
    (tmp_path / "history.json").write_text(json.dumps(history))
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["baseline_accuracy"] == 0.97
