"""Every kind of bad input: one clear line on stderr, a non-zero exit, no traceback."""

import pathlib

import pytest
from click.testing import CliRunner

from cli.main import main

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "corpus"

CASES = {
    "allocate_rate_below_one.yaml": (2, "allocate_rate_below_one.yaml:7: stages[0].allocate."
                                        "rate: expected a number > 1. Received: 0.5"),
    "allocate_unknown_method.yaml": (2, "allocate_unknown_method.yaml:7: stages[0].allocate."
                                        "method: expected one of uniform, global, sensitivity. "
                                        "Received: 'magic'"),
    "allocate_pattern_matches_nothing.yaml": (2, "allocate_pattern_matches_nothing.yaml:7: "
                                                 "stages[0].allocate.layers[1]: the pattern "
                                                 "'dense*' matches no compressible layer. "
                                                 "Compressible layers: conv1, conv2, fc1, fc2"),
    "malformed_yaml.yaml": (2, "malformed_yaml.yaml:3: invalid YAML: expected ',' or ']', but "
                               "got ':'"),
    "wrong_type.yaml": (2, "wrong_type.yaml:8: stages[0].admm.epochs: expected an integer >= 0. "
                           "Received: 'three'"),
    "out_of_range.yaml": (2, "out_of_range.yaml:7: stages[0].targets.conv*.sparsity: expected a "
                             "number in [0, 1). Received: 1.5"),
    "unknown_key.yaml": (2, "unknown_key.yaml:3: shuffle: expected one of the keys version, "
                            "name, seed, model, data, baseline, defaults, stages, distribute, "
                            "precision, jit_compile. Received: 'shuffle'"),
    "power_of_two_bits.yaml": (2, "power_of_two_bits.yaml:7: stages[0].targets.fc1."
                                  "power_of_two: expected an integer in [2, 6]. Received: 7"),
    "bad_distribute.yaml": (2, "bad_distribute.yaml:3: distribute: expected one of none, "
                               "mirrored, multi_worker, tpu. Received: 'everywhere'"),
    "missing_model_file.yaml": (1, "Model file not found: expected an existing .keras file. "
                                   "Received: missing.keras"),
    "corrupt_model_file.yaml": (1, "Cannot load model file corrupt.keras: not a .keras archive "
                                   "(a zip file); it is corrupt, truncated or another format."),
    "lambda_model.yaml": (1, "Cannot load model file lambda.keras: Refused in safe mode: the "
                             "file holds Python code"),
    "no_compressible_layer.yaml": (2, "no_compressible_layer.yaml:7: stages[0].targets.*: the "
                                      "pattern matches no compressible layer, only layers "
                                      "without one: 'flatten' (Flatten), 'softmax' (Softmax); "
                                      "expected a layer with a `kernel`"),
    "pattern_matches_nothing.yaml": (2, "pattern_matches_nothing.yaml:7: stages[0].targets."
                                        "nothing*: the pattern matches no compressible layer. "
                                        "Compressible layers: conv1, conv2, fc1, fc2"),
    "dataset_offline.yaml": (1, "Cannot load dataset 'cifar100': no local copy was found"),
    "input_shape_mismatch.yaml": (1, "data: the model 'color' takes inputs of shape (32, 32, 3), "
                                     "the data set 'fashion_mnist' has examples of shape "
                                     "(28, 28, 1): use a model built for this data, or other "
                                     "data"),
}


def _run(args, monkeypatch):
    monkeypatch.chdir(CORPUS)
    monkeypatch.setenv("TFADMM_DATA_DIR", str(CORPUS / "no-datasets-here"))
    return CliRunner().invoke(main, args)


def _one_line(result, code, expected):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {expected}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_recipe(name, monkeypatch, tmp_path):
    code, expected = CASES[name]
    _one_line(_run(["run", name, "-o", str(tmp_path / "run"), "-q"], monkeypatch), code, expected)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith("allocate_")))
def test_plan_of_a_bad_allocation(name, monkeypatch):
    code, expected = CASES[name]
    _one_line(_run(["plan", name], monkeypatch), code, expected)


def test_every_corpus_recipe_has_a_case():
    assert sorted(p.name for p in CORPUS.glob("*.yaml")) == sorted(CASES)


def test_resume_of_a_run_from_another_recipe(monkeypatch, tmp_path):
    from tfadmm.recipes.run_directory import RunDirectory

    run = tmp_path / "run"
    RunDirectory(run).prepare("version: 1\nname: other\n", resume=False, force=False)
    result = _run(["run", "pattern_matches_nothing.yaml", "-o", str(run), "--resume"],
                  monkeypatch)
    _one_line(result, 1, f"{run}: this run was made from another recipe")
