import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli.main import main
from tests._tiny_models import batch, pruned


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "pruned.keras"
    pruned()[1].save(path)
    return path


def test_export_savedmodel(model_file, tmp_path):
    out = tmp_path / "served"
    result = CliRunner().invoke(main, ["export", str(model_file), "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Wrote savedmodel to {out}: ")
    assert lines[1].startswith("dense SavedModel: ")
    assert lines[2].startswith("theoretical minimum: ")
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    assert serve(tf.constant(batch((6,))))["output_0"].shape == (5, 3)


def test_existing_output_needs_force(model_file, tmp_path):
    out = tmp_path / "m.keras"
    out.write_text("keep")
    args = ["export", str(model_file), "--format", "keras", "--output", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for --output: '{out}' already exists; "
        "pass --force to replace it."
    )
    assert out.read_text() == "keep"
    result = CliRunner().invoke(main, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 100


def test_unloadable_model_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a zip")
    result = CliRunner().invoke(main, ["export", str(bad), "--output", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot load model file {bad}: not a .keras archive (a zip file); it is "
        "corrupt, truncated or another format.\n"
    )
    assert len(result.output.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_path_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["export", str(tmp_path / "nope.keras"), "-o", "x"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for 'PATH': Path '{tmp_path / 'nope.keras'}' does not exist."
    )
