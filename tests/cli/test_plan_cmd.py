import struct
import sys

import pytest
from click.testing import CliRunner

from tfadmm_cli.main import main

TARGETS = """\
version: 1
name: tiny
model: {zoo: lenet5}
data: {name: fashion_mnist, batch_size: 64, take: 128, validation_split: 0.25, augment: false}
stages:
  - name: half
    targets: {"fc*": {sparsity: 0.5}}
  - name: auto
    allocate: {rate: 40, method: uniform}
"""


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TARGETS)
    return path


def test_plan_prints_every_layer_and_the_overall_rate_per_stage(recipe):
    result = _invoke("plan", recipe)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"""\
[tfadmm] loading data 'fashion_mnist'
{recipe}: model 'lenet5', 2 stages

stage 1/2 half (targets)
  layer     weights  sparsity        kept
  conv1         500    0.0000         500
  conv2      25,000    0.0000      25,000
  fc1       400,000    0.5000     200,000
  fc2         5,000    0.5000       2,500
  overall rate: 2.0x (202,500 of 405,000 weights of the pruned layers kept)

stage 2/2 auto (uniform allocation)
  layer     weights  sparsity        kept
  conv1         500    0.9750          13
  conv2      25,000    0.9750         625
  fc1       400,000    0.9750       9,999
  fc2         5,000    0.9750         125
  overall rate: 40.0x (10,762 of 430,500 weights of the pruned layers kept)
"""


def test_plan_runs_the_sensitivity_analysis_and_prints_its_curves(recipe, tmp_path):
    recipe.write_text(TARGETS.replace("method: uniform", "method: sensitivity"))
    result = _invoke("plan", recipe, "--logdir", tmp_path / "logs")
    assert result.exit_code == 0, result.output
    assert "[tfadmm] auto: sensitivity 4/4: fc2 at 11 sparsities (" in result.stdout
    lines = result.stdout.split(f"{recipe}: model", 1)[1].splitlines()
    assert lines[10].startswith("stage 2/2 auto (sensitivity allocation, analysed in ")
    assert lines[16].startswith("  overall rate: 40.")
    assert lines[17] == "  sensitivity: validation loss (accuracy) with one layer pruned alone"
    assert lines[18].split() == ["sparsity", "conv1", "conv2", "fc1", "fc2"]
    assert [line.split()[0] for line in lines[19:]] == [
        "0.000", "0.500", "0.700", "0.800", "0.900", "0.950", "0.970", "0.980", "0.990",
        "0.995", "0.998", "0.999"]
    assert list((tmp_path / "logs").iterdir())  # the curves, in TensorBoard


def test_plan_draws_each_allocating_stage_to_a_png(recipe, tmp_path):
    recipe.write_text(TARGETS.replace("method: uniform", "method: sensitivity"))
    result = _invoke("plan", recipe, "--png", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    png = tmp_path / "plots" / "02-auto-sensitivity.png"
    assert f"[tfadmm] auto: curves drawn to {png}\n" in result.stdout
    assert [p.name for p in (tmp_path / "plots").iterdir()] == [png.name]  # no temp file
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1200, 450)


def test_plan_without_matplotlib_says_once_that_it_draws_no_png(recipe, tmp_path, monkeypatch):
    recipe.write_text(TARGETS.replace("method: uniform", "method: sensitivity")
                      + "  - name: more\n    allocate: {rate: 60}\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = _invoke("plan", recipe, "--png", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if ".png" in line] == [
        "[tfadmm] sensitivity.png not drawn: matplotlib is not installed "
        "(pip install 'tfadmm[plot]')"]
    assert not (tmp_path / "plots").exists()


def test_plan_of_a_rate_the_grid_cannot_reach_is_one_line(recipe):
    recipe.write_text(TARGETS.replace("rate: 40, method: uniform", "rate: 5000"))
    result = _invoke("plan", recipe)
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {recipe}:9: stages[1].allocate: Invalid `rate`: the sensitivity grid reaches "
        "at most 998.8x (sparsity 0.999 in every layer): expected a lower rate, or a `grid` "
        "with higher sparsities. Received: rate=5000.0\n"
    )


def test_validate_says_an_allocation_is_made_at_run_time(recipe):
    result = _invoke("validate", recipe)
    assert result.exit_code == 0, result.output
    assert result.output == (f"{recipe}: ok (2 stages; pruning rate by stage: half 2.0x, "
                             "auto 40.0x (allocated at run time))\n")
