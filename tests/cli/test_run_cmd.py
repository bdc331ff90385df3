import json
import os
import pathlib
import stat
import zipfile

import pytest
from click.testing import CliRunner

from tfadmm_cli.main import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = """\
version: 1
name: tiny
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 128}
stages:
  - name: half
    targets: {"fc*": {sparsity: 0.5}}
"""


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_version_and_help():
    assert _invoke("--version").output.startswith("tfadmm, version ")
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "validate", "report", "evaluate", "export"):
        assert command in result.output


def test_validate_ok_prints_the_planned_rate(tiny):
    result = _invoke("validate", tiny)
    assert result.exit_code == 0, result.output
    assert result.output == f"{tiny}: ok (1 stages; pruning rate by stage: half 2.0x)\n"


def test_validate_warns_when_lr_times_rho_passes_the_optimizers_limit(tiny):
    tiny.write_text(TINY + "    admm: {epochs: 60, rho_multiplier: 1.3, updates_per_epoch: 1,\n"
                           "           optimizer: {name: sgd, learning_rate: 0.01, "
                           "momentum: 0.9}}\n")
    result = _invoke("validate", tiny)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Warning: {tiny}:8: stages[0].admm: learning rate x rho reaches 3.83 at Z/U update 49 "
        "of 60 (rho 383), beyond SGD's stable 3.8 = 2 x (1 + momentum): expect a NaN loss; make "
        "fewer Z/U updates (updates_per_epoch, update_every_steps), lower rho_multiplier, or set "
        "rho_max <= 380\n"
    )
    assert result.stdout == f"{tiny}: ok (1 stages; pruning rate by stage: half 2.0x)\n"


def test_validate_bad_recipe_exits_2_with_every_problem(tiny):
    tiny.write_text(TINY.replace("sparsity: 0.5", "sparsity: 1.5").replace("take: 128", "tak: 1"))
    result = _invoke("validate", tiny)
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {tiny}:4: data.tak: expected one of the keys name, source, path, batch_size, "
        "validation_split, take, augment, normalize. Received: 'tak'\n"
        f"{tiny}:7: stages[0].targets.fc*.sparsity: expected a number in [0, 1). "
        "Received: 1.5\n"
    )


def test_validate_catches_patterns_that_match_no_layer(tiny):
    tiny.write_text(TINY.replace('"fc*"', '"dense*"'))
    result = _invoke("validate", tiny)
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {tiny}:7: stages[0].targets.dense*: the pattern matches no compressible "
        "layer. Compressible layers: conv1, conv2, fc1, fc2\n"
    )


def test_run_refuses_an_existing_directory_and_conflicting_flags(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = _invoke("run", tiny, "--output", out)
    assert result.exit_code == 2
    assert result.output == (  # bad usage: the message alone, before any banner
        f"Error: {out}: the run directory already exists and is not empty; pass --resume to "
        "continue that run or --force to start over.\n"
    )
    assert (out / "precious.txt").read_text() == "keep me"
    result = _invoke("run", tiny, "--resume", "--force")
    assert result.exit_code == 2
    assert "--resume and --force exclude each other." in result.output


def test_run_with_a_bad_override_exits_2(tiny):
    result = _invoke("run", tiny, "--set", "stages.0.admm.epochs=-1")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {tiny}:6: stages[0].admm.epochs: expected an integer >= 0. Received: -1\n"
    )


def test_dry_run_builds_model_and_pipeline(tiny):
    result = _invoke("run", tiny, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{tiny}: ok: model 'lenet5' (431,080 parameters) on 'fashion_mnist' (28, 28, 1) -> "
        "(10,), 2 training batches, 1 stages\n"
    )


def test_shipped_quickstart_runs_from_the_cli(tmp_path):
    out = tmp_path / "q"
    result = _invoke(  # no --quiet: stdout is not a terminal here
        "run", ROOT / "recipes" / "quickstart.yaml", "--output", out,
        "--set", "data.take=256", "--set", "baseline.epochs=1",
        "--set", "stages.prune-10x.admm.epochs=1", "--set", "stages.prune-10x.retrain.epochs=1",
    )
    assert result.exit_code == 0, result.output
    assert f"watch it with: tensorboard --logdir {out / 'logs'}" in result.output
    assert "[tfadmm] stage 1/1 prune-10x: ADMM epoch 1/1" in result.output
    assert "pruning rate (compressed kernels): 10.1x" in result.output
    # One line per epoch, no progress-bar frames or colour codes in a redirected log.
    assert "\r" not in result.output and "\x1b[" not in result.output
    # The final model: weights without optimizer state (the stage's model keeps it).
    final, stage = out / "model.keras", out / "stages" / "01-prune-10x" / "model.keras"
    with zipfile.ZipFile(final) as archive:
        assert not json.loads(archive.read("config.json")).get("compile_config")
    assert final.stat().st_size < 0.6 * stage.stat().st_size
    # Every file of the run directory has one mode, the umask's.
    umask = os.umask(0)
    os.umask(umask)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert modes == {0o666 & ~umask}
    # `evaluate` finds the run's own recipe.
    evaluated = _invoke("evaluate", out)
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.output.startswith("test accuracy: 0.")
    refused = _invoke("evaluate", final)
    assert refused.exit_code == 2
    assert refused.output == (
        f"Error: evaluate: expected --recipe, or a run directory with its recipe.yaml. "
        f"Received: {final}\n"
    )


@pytest.mark.parametrize("value, problem", [
    ("0", "expected an integer >= 1. Received: 0"),
    ("two", "'two' is not a valid integer."),
])
def test_keep_checkpoints_must_be_a_positive_integer(tiny, value, problem):
    result = _invoke("run", tiny, "--keep-checkpoints", value)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"Error: Invalid value for '--keep-checkpoints': {problem}\n")


@pytest.mark.parametrize("args, keep", [((), 2), (("--keep-checkpoints", "5"), 5)])
def test_keep_checkpoints_reaches_the_run(tiny, tmp_path, monkeypatch, args, keep):
    import tfadmm.recipes
    from tfadmm.recipes import RunResult

    calls = []

    def run_recipe(recipe, output, **options):
        calls.append(options["keep_checkpoints"])
        return RunResult(output, output / "model.keras", {})

    monkeypatch.setattr(tfadmm.recipes, "run_recipe", run_recipe)
    result = _invoke("run", tiny, "--output", tmp_path / "out", *args)
    assert result.exit_code == 0, result.output
    assert calls == [keep]
