import itertools
import math

import keras
import numpy as np
import pytest

import tfadmm
from tests._tiny_models import classifier_data, small_classifier
from tfadmm.allocation import (
    SensitivityCurves,
    _lower_hull,
    global_keep,
    kept_weights,
    layer_kept,
    sensitivity_keep,
    sparsity_for,
)
from tfadmm.constraints import project_sparsity

_model, _data = small_classifier, classifier_data


def _sizes(model):
    return {layer.name: int(np.prod(layer.kernel.shape)) for layer in model.layers
            if hasattr(layer, "kernel")}


def test_sparsity_for_keeps_exactly_that_many_against_brute_force():
    for size in range(1, 61):
        for keep in range(1, size + 1):
            s = sparsity_for([size], keep)
            assert kept_weights(size, s) == keep
            assert 0 <= s < 1
            x = np.arange(1, size + 1, dtype="float32")
            assert int(np.count_nonzero(project_sparsity(x, s).values)) == keep


def test_sparsity_for_several_kernels_is_the_smallest_that_fits():
    sizes = [7, 13]
    for keep in range(2, 21):
        s = sparsity_for(sizes, keep)
        assert layer_kept(sizes, s) <= keep
        assert layer_kept(sizes, math.nextafter(s, 0.0)) > keep or s == 0.0


def test_global_keep_is_a_top_k_across_layers():
    rng = np.random.default_rng(1)
    weights = {"a": [rng.normal(size=(5, 4))], "b": [rng.normal(size=30) * 3]}
    keep = global_keep(weights, 12, {"a": 0, "b": 0})
    every = sorted([(abs(v), n) for n, ws in weights.items() for v in ws[0].ravel()],
                   reverse=True)[:12]
    assert keep == {"a": sum(n == "a" for _, n in every), "b": sum(n == "b" for _, n in every)}


def test_global_keep_floor_leaves_no_layer_empty():
    weights = {"small": [np.full(10, 0.01)], "big": [np.arange(1.0, 101.0)]}
    assert global_keep(weights, 20, {"small": 3, "big": 1}) == {"small": 3, "big": 17}


def _hull_damage(points, k):
    hull = _lower_hull(points)
    keeps = [p[0] for p in hull][::-1]
    damages = [p[1] for p in hull][::-1]
    return float(np.interp(k, keeps, damages))


def test_sensitivity_keep_is_optimal_against_brute_force():
    rng = np.random.default_rng(2)
    sizes = {"a": (10,), "b": (16,), "c": (24,)}
    grid = (0.5, 0.7, 0.8, 0.9)
    for trial in range(5):
        loss = {n: tuple(1.0 + np.cumsum(rng.uniform(0, 1, len(grid)))) for n in sizes}
        curves = SensitivityCurves(grid, 1.0, 0.9, loss, {n: (0.0,) * len(grid) for n in sizes})
        nonzero = {n: s[0] for n, s in sizes.items()}
        points = {}
        for n, (size,) in sizes.items():
            points[n] = [(size, 0.0)] + [(kept_weights(size, s), d - 1.0)
                                         for s, d in zip(grid, loss[n], strict=True)]
        for budget in (10, 14, 20, 25):
            keep = sensitivity_keep(curves, sizes, nonzero, budget)
            assert sum(keep.values()) == budget
            ranges = [range(kept_weights(size, grid[-1]), size + 1) for (size,) in sizes.values()]
            best = min(
                sum(_hull_damage(points[n], k) for n, k in zip(sizes, combo, strict=True))
                for combo in itertools.product(*ranges) if sum(combo) == budget
            )
            got = sum(_hull_damage(points[n], keep[n]) for n in sizes)
            assert got == pytest.approx(best, abs=1e-9), (trial, budget)


@pytest.mark.parametrize("method", ["uniform", "global", "sensitivity"])
def test_allocate_meets_the_rate_and_wraps(method):
    model = _model()
    targets = tfadmm.allocate(model, 20, method=method, data=_data())
    assert set(targets) == {"conv1", "fc1", "fc2"}
    sizes = _sizes(model)
    kept = sum(kept_weights(sizes[n], c.sparsity) for n, c in targets.items())
    assert sum(sizes.values()) / kept == pytest.approx(20, rel=0.01)
    if method == "uniform":
        assert len({c.sparsity for c in targets.values()}) == 1
    tfadmm.wrap(model, targets)  # usable as-is


def test_allocate_only_the_chosen_layers():
    model = _model()
    allocation = tfadmm.plan_allocation(model, 10, method="global", layers=["fc*"])
    assert set(allocation.sparsities) == {"fc1", "fc2"}
    assert allocation.achieved_rate == pytest.approx(10, rel=0.01)


def test_allocation_keeps_present_zeros_zero():
    model = _model()
    fc1 = model.get_layer("fc1").kernel
    fc1.assign(project_sparsity(keras.ops.convert_to_numpy(fc1), 0.95).values)
    for method in ("uniform", "global", "sensitivity"):
        allocation = tfadmm.plan_allocation(model, 30, method=method, data=_data())
        assert allocation.sparsities["fc1"] >= 0.95, method


def test_sensitivity_curves_prune_one_layer_at_a_time_and_restore_it():
    model = _model()
    x, y = _data()
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    lines = []
    curves = tfadmm.sensitivity_curves(model, (x, y), grid=[0.5, 0.9], on_progress=lines.append)
    after = [keras.ops.convert_to_numpy(w) for w in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert len(lines) == 3 and lines[0].startswith("sensitivity 1/3: conv1 at 2 sparsities (")
    assert curves.sparsities == (0.5, 0.9)
    # The fc1 point at 0.9 is the model with fc1 alone pruned to 90 %.
    kernel = model.get_layer("fc1").kernel
    kernel.assign(project_sparsity(before[2], 0.9).values)
    logits = keras.ops.convert_to_numpy(model(x)).astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert curves.loss["fc1"][1] == pytest.approx(-log_p[np.arange(len(y)), y].mean(), rel=1e-5)
    assert curves.accuracy["fc1"][1] == pytest.approx((logits.argmax(-1) == y).mean())


def test_allocation_round_trips_through_json():
    allocation = tfadmm.plan_allocation(_model(), 20, data=_data(), grid=[0.5, 0.9, 0.99])
    again = tfadmm.Allocation.from_dict(allocation.to_dict())
    assert again == allocation and again.targets() == allocation.targets()


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 1}, "Invalid `rate`: expected a number > 1 (total weights / non-zero weights). "
                  "Received: rate=1"),
    ({"rate": 0.5}, "Invalid `rate`: expected a number > 1 (total weights / non-zero weights). "
                    "Received: rate=0.5"),
    ({"rate": 10, "method": "magic"},
     "Invalid `method`: expected one of uniform, global, sensitivity. Received: method='magic'"),
    ({"rate": 10}, "method='sensitivity' needs validation `data`: expected a tf.data dataset "
                   "of (x, y) batches or (x, y) arrays. Received: data=None"),
    ({"rate": 10, "method": "uniform", "layers": ["dense*"]},
     "Invalid `layers`: the pattern 'dense*' matches no compressible layer. Compressible "
     "layers: conv1, fc1, fc2"),
    ({"rate": 1e6, "method": "uniform"},
     "Invalid `rate`: expected a number in (1, 6253] for layers conv1, fc1, fc2 "
     "(18,760 weights, 18,760 non-zero; each layer keeps at least one). Received: rate=1000000.0"),
])
def test_bad_input_is_one_clear_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        tfadmm.allocate(_model(), **kwargs)
    assert str(info.value) == message


def test_a_rate_beyond_the_grid_says_so():
    with pytest.raises(ValueError) as info:
        tfadmm.allocate(_model(), 50, data=_data(), grid=[0.5, 0.9])
    assert str(info.value) == (
        "Invalid `rate`: the sensitivity grid reaches at most 9.989x (sparsity 0.9 in every "
        "layer): expected a lower rate, or a `grid` with higher sparsities. Received: rate=50"
    )
