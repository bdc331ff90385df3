"""A full disk, a NaN loss and unsafe model files: clear errors, nothing lost."""

import errno
import json
import os

import keras
import pytest

from tests import _cli
from tfadmm.errors import ModelError, TfadmmError
from tfadmm.recipes import parse_recipe, run_directory, run_recipe


@pytest.mark.slow
def test_disk_full_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 6:  # recipe, state, baseline... then a checkpoint
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(run_directory.os, "fsync", fsync)
    out = tmp_path / "run"
    with pytest.raises(TfadmmError, match="cannot write it \\(No space left on device\\)"):
        run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, verbose=0)
    state = json.loads((out / "state.json").read_text())
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary file left behind
    monkeypatch.setattr(run_directory.os, "fsync", real)
    result = run_recipe(parse_recipe(_cli.TINY, "tiny.yaml"), out, resume=True, verbose=0)
    assert result.model_path.exists() and state["status"] == "running"


# A small MLP on 128 images: the NaN guard in the default suite.
SMALL = _cli.TINY.replace("{zoo: lenet5}", "{function: 'tests._tiny_models:dropout_mlp'}") \
    .replace("{conv*: 0.5, fc*: 0.9}", "{fc*: 0.9}").replace("take: 256", "take: 128")


def test_nan_loss_stops_the_stage_with_a_clear_error(tmp_path):
    bad = parse_recipe(SMALL, "tiny.yaml", ["stages.prune.admm.rho=1e12"])
    with pytest.raises(TfadmmError) as info:
        run_recipe(bad, tmp_path / "run", verbose=0)
    assert str(info.value) == (
        "stage 1/1 prune: ADMM epoch 2, batch 1: the admm_penalty became NaN or Inf, so the "
        "stage stopped; rho is likely too large: lower stages.prune.admm.rho (initial 1e+12, "
        "now 1e+12). The last good checkpoint is kept: continue with --resume "
        "--allow-changes --set KEY=VALUE."
    )
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "running" and state["completed_stages"] == 0


@pytest.mark.slow
def test_nan_stops_the_stage_and_resumes_with_changed_settings(tmp_path):
    out = tmp_path / "run"
    bad = parse_recipe(_cli.TINY, "tiny.yaml", ["stages.prune.admm.rho=1e12"])
    with pytest.raises(TfadmmError) as info:
        run_recipe(bad, out, verbose=0)
    assert "stage 1/1 prune: ADMM epoch 1, batch 2: the loss became NaN or Inf" in str(info.value)
    assert "stages.prune.admm.rho (initial 1e+12" in str(info.value)
    good = parse_recipe(_cli.TINY, "tiny.yaml")
    with pytest.raises(TfadmmError, match="made from another recipe"):
        run_recipe(good, out, resume=True, verbose=0)
    with pytest.raises(TfadmmError, match="changes what the run already did: seed"):
        run_recipe(parse_recipe(_cli.TINY, "tiny.yaml", ["seed=3"]), out, resume=True,
                   allow_changes=True, verbose=0)
    result = run_recipe(good, out, resume=True, allow_changes=True, verbose=0)
    assert result.history["stages"][0]["test_accuracy"] > 0


def test_lambda_model_refused_in_safe_mode(tmp_path):
    from tests.corpus.models import with_lambda
    from tfadmm import models

    path = tmp_path / "lambda.keras"
    with_lambda().save(path)
    with pytest.raises(ModelError, match="Refused in safe mode: the file holds Python code"):
        models.load(str(path))
    assert isinstance(models.load(str(path), safe_mode=False), keras.Model)


def test_yaml_cannot_build_python_objects():
    from tfadmm.errors import RecipeError

    # Safe loading: a Python tag is plain data (never called), here a list.
    with pytest.raises(RecipeError, match=r"version: expected 1. Received: \['echo hi'\]"):
        parse_recipe("version: !!python/object/apply:os.system ['echo hi']\n", "x.yaml")
