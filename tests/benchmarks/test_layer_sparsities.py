"""The benchmarks' per-layer rates: ECCV 2018's LeNet-5 proportions scaled to a target rate."""

import math
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import common  # noqa: E402


def _kept(sparsities):
    sizes = common.LAYER_SIZES
    return {n: sizes[n] - math.floor(s * sizes[n]) for n, s in sparsities.items()}


@pytest.mark.parametrize("rate", [10, 40, 71.2, 100, 246])
def test_overall_rate_is_reached(rate):
    kept = _kept(common.layer_sparsities(rate))
    achieved = sum(common.LAYER_SIZES.values()) / sum(kept.values())
    assert achieved == pytest.approx(rate, rel=2e-3)


def test_proportions_are_eccv_2018_at_71x():
    assert common.layer_sparsities(71.2) == pytest.approx(
        {"conv1": 0.8, "conv2": 0.92, "fc1": 0.991, "fc2": 0.93}, abs=2e-4
    )


def test_a_layer_that_would_keep_everything_is_dense_and_others_make_up():
    sparsities = common.layer_sparsities(10)
    assert sparsities["conv1"] == 0.0
    kept = _kept(sparsities)
    # The unclipped layers keep the ECCV ratios between them.
    assert kept["conv2"] / kept["fc1"] == pytest.approx(
        (0.08 * 25_000) / (0.009 * 400_000), rel=1e-3
    )


def test_246x_keeps_about_1750_weights():
    assert sum(_kept(common.layer_sparsities(246)).values()) == 1750


def test_rate_must_exceed_one():
    with pytest.raises(ValueError, match=r"Received: rate=1"):
        common.layer_sparsities(1)
