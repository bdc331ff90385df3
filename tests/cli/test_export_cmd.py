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
    assert lines[3:] == [
        "serving_default input 'features': float32 (None, 6)",
        "expects: inputs prepared as for training (pass --recipe to print the normalisation, "
        "or to bake it in with --include-preprocessing)",
    ]
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


RUN_RECIPE = """\
version: 1
name: served
model: {zoo: lenet5}
data: {name: fashion_mnist}
stages:
  - name: prune
    targets: {"*": {sparsity: 0.5}}
"""


@pytest.fixture(scope="module")
def run_directory(tmp_path_factory):
    """A finished run's files that export reads: model.keras and recipe.yaml."""
    import tfadmm

    path = tmp_path_factory.mktemp("run")
    tfadmm.models.get("lenet5").save(path / "model.keras")
    (path / "recipe.yaml").write_text(RUN_RECIPE)
    return path


def test_export_of_a_run_states_its_normalisation(run_directory, tmp_path):
    out = tmp_path / "served"
    result = CliRunner().invoke(main, ["export", str(run_directory), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3:] == [
        "serving_default input 'input': float32 (None, 28, 28, 1)",
        "expects: the fashion_mnist pipeline's (pixels / 255 - mean) / std, mean=(0.286,), "
        "std=(0.353,) (--include-preprocessing bakes it in)",
    ]


def test_include_preprocessing_serves_raw_pixels(run_directory, tmp_path):
    import keras
    import numpy as np

    out = tmp_path / "served"
    args = ["export", str(run_directory), "-o", str(out), "--include-preprocessing"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[4] == (
        "expects: raw pixel values in [0, 255]; serving_default applies the fashion_mnist "
        "pipeline's (pixels / 255 - mean) / std, mean=(0.286,), std=(0.353,)"
    )
    pixels = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("float32")
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    model = keras.models.load_model(run_directory / "model.keras")
    np.testing.assert_allclose(
        serve(input=tf.constant(pixels))["output_0"], model((pixels / 255 - 0.2860) / 0.3530),
        atol=1e-4, rtol=0,
    )


def test_include_preprocessing_needs_a_recipe(model_file, tmp_path):
    args = ["export", str(model_file), "-o", str(tmp_path / "o"), "--include-preprocessing"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output == (
        "Error: export: --include-preprocessing needs the data's normalisation: expected "
        f"--recipe, or a run directory with its recipe.yaml. Received: {model_file}\n"
    )
    assert not (tmp_path / "o").exists()


def test_export_shrink_removes_pruned_units(tmp_path):
    import keras

    import tfadmm

    source = tmp_path / "filters.keras"
    tfadmm.strip(pruned(targets={"fc1": tfadmm.FilterSparsity(0.5)})[0]).save(source)
    out = tmp_path / "small.keras"
    args = ["export", str(source), "--format", "keras", "--output", str(out), "--shrink"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    small = keras.models.load_model(out)
    assert small.get_layer("fc1").units == 16
    assert small.get_layer("fc2").get_weights()[0].shape == (16, 3)
