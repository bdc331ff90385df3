import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfadmm  # noqa: E402
from tfadmm.constraints import (  # noqa: E402
    Binary,
    Chain,
    PowerOfTwo,
    Quantize,
    Sparsity,
    Ternary,
    get,
    project_binary,
    project_power_of_two,
    project_quantize,
    project_ternary,
)
from tfadmm.constraints.quantization import GRID_POINTS  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


def _np(x):
    return keras.ops.convert_to_numpy(x)


POT3 = (0.0, 0.25, 0.5, 1.0, -0.25, -0.5, -1.0)
POT4 = (0.0,) + tuple(s * 2.0**-k for s in (1, -1) for k in range(7))
# (constraint, its code set): every constraint of the module, both scale modes.
QUANTIZERS = [
    (Binary(), (-1, 1)),
    (Binary(per_channel=True), (-1, 1)),
    (Ternary(), (-1, 0, 1)),
    (Ternary(per_channel=True), (-1, 0, 1)),
    (Quantize(2), (-1, 0, 1)),
    (Quantize(3), tuple(range(-3, 4))),
    (Quantize(4, per_channel=True), tuple(range(-7, 8))),
    (Quantize(8), tuple(range(-127, 128))),
    (PowerOfTwo(3), POT3),
    (PowerOfTwo(4, per_channel=True), POT4),
]
IDS = [repr(c) for c, _ in QUANTIZERS]


def _groups(x, per_channel):
    """The scale groups of `x`: one per output channel, or the whole tensor."""
    if per_channel:
        return [x[..., j] for j in range(x.shape[-1])]
    return [x]


def _scale_of(y, codes):
    """The scale a with y = a * codes, from the largest magnitude."""
    top = np.max(np.abs(y))
    if top == 0:
        return 0.0
    candidates = [top / abs(c) for c in codes if c != 0]
    return min(candidates, key=lambda a: np.max(np.abs(y / a - _nearest(y / a, codes))))


def _nearest(r, codes):
    codes = np.asarray(codes, dtype="float64")
    return codes[np.argmin(np.abs(r[..., None] - codes), axis=-1)]


# -- feasibility ---------------------------------------------------------------


@pytest.mark.parametrize(("constraint", "codes"), QUANTIZERS, ids=IDS)
def test_values_come_only_from_the_level_set(constraint, codes):
    x = np.random.default_rng(0).normal(size=(4, 3, 5)).astype("float32")
    y = _np(constraint(x))
    assert y.shape == x.shape and y.dtype == x.dtype
    for group in _groups(y, constraint.per_channel):
        a = _scale_of(group, codes)
        assert a > 0
        np.testing.assert_allclose(group / a, _nearest(group / a, codes), atol=1e-5)


def test_dtype_and_shape_are_preserved():
    for dtype in ("float32", "float64"):
        x = np.random.default_rng(1).normal(size=(3, 2, 4)).astype(dtype)
        for constraint, _ in QUANTIZERS:
            y = _np(constraint(x))
            assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("per_channel", [False, True])
def test_binary_has_exactly_two_values_per_scale_group(per_channel):
    x = np.random.default_rng(2).normal(size=(6, 5, 3)).astype("float32")
    y = _np(Binary(per_channel)(x))
    for gx, gy in zip(_groups(x, per_channel), _groups(y, per_channel), strict=True):
        a = np.mean(np.abs(gx))
        assert sorted(np.unique(gy)) == pytest.approx([-a, a], rel=1e-6)
        np.testing.assert_array_equal(np.sign(gy), np.where(gx >= 0, 1, -1))


def test_binary_maps_zero_to_plus_a_inside_the_support_only():
    x = np.array([0.0, -2.0, 0.0, 4.0], "float32")
    result = project_binary(x, support=np.array([1, 1, 0, 1], "float32"))
    np.testing.assert_allclose(_np(result.values), [2.0, -2.0, 0.0, 2.0])
    assert not np.signbit(_np(result.values)[2])


def test_per_channel_scales_follow_the_last_axis():
    x = np.array([[1.0, -10.0], [-3.0, 30.0]], "float32")
    np.testing.assert_allclose(_np(Binary(per_channel=True)(x)), [[2.0, -20.0], [-2.0, 20.0]])
    np.testing.assert_allclose(_np(Binary()(x)), [[11.0, -11.0], [-11.0, 11.0]])


def test_documented_examples():
    np.testing.assert_allclose(
        _np(project_ternary(np.array([0.1, -1.0, 1.2, 0.9], "float32")).values),
        [0.0, -31 / 30, 31 / 30, 31 / 30],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        _np(project_quantize(np.array([0.1, -1.0, 2.0, 3.0], "float32"), 3).values),
        [0.0, -1.0, 2.0, 3.0],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        _np(project_power_of_two(np.array([1.0, 0.5, -0.3, 0.01], "float32"), 3).values),
        [1.01, 0.505, -0.2524, 0.0],
        rtol=1e-3,
    )


# -- projection properties -----------------------------------------------------


@pytest.mark.parametrize(("constraint", "codes"), QUANTIZERS, ids=IDS)
def test_idempotent(constraint, codes):
    rng = np.random.default_rng(3)
    for shape in [(5, 4), (40, 3), (2, 3, 8)]:
        once = _np(constraint(rng.normal(size=shape).astype("float32")))
        np.testing.assert_allclose(_np(constraint(once)), once, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("constraint", "feasible"),
    [
        (Binary(), [0.3, -0.3, 0.3, 0.3]),
        (Ternary(), [0.5, 0.0, -0.5, 0.0, 0.5]),
        (Quantize(3), [0.2, -0.6, 0.0, 0.4, -0.2]),
        (Quantize(4), [0.7, -0.1, 0.3, 0.0, -0.7]),
        (PowerOfTwo(3), [1.5, -0.375, 0.75, 0.0, -1.5]),
    ],
    ids=repr,
)
def test_already_feasible_is_unchanged(constraint, feasible):
    x = np.array(feasible, "float32")
    np.testing.assert_allclose(_np(constraint(x)), x, rtol=1e-6, atol=0)


def _brute_force(x, codes):
    """min over codes Q and a >= 0 of ||x - a Q||^2, by enumeration."""
    q = np.array(list(itertools.product(codes, repeat=x.size)), dtype="float64")
    norm = np.sum(q * q, axis=1)
    a = np.where(norm > 0, np.maximum(q @ x, 0) / np.maximum(norm, 1e-30), 0.0)
    return np.min(np.sum((x - a[:, None] * q) ** 2, axis=1))


def _distance(constraint, x):
    return float(np.sum((x - _np(constraint(x)).astype("float64")) ** 2))


def test_binary_is_optimal_against_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(30):
        x = rng.normal(size=5)
        assert _distance(Binary(), x) <= _brute_force(x, (-1, 1)) + 1e-5


def _heavy_tailed(rng, size):
    """Student-t (2 degrees of freedom) vectors: a few large values among small ones."""
    return rng.standard_t(2, size=size)


@pytest.mark.parametrize("per_channel", [False, True])
def test_ternary_is_the_exact_projection_against_brute_force(per_channel):
    rng = np.random.default_rng(11)
    for _ in range(60):
        x = _heavy_tailed(rng, (6, 2)).astype("float32").astype("float64")
        best = sum(_brute_force(g.ravel(), (-1, 0, 1)) for g in _groups(x, per_channel))
        assert _distance(Ternary(per_channel=per_channel), x) <= best + 1e-6 * np.sum(x * x)


def test_ternary_exact_projection_respects_the_support():
    rng = np.random.default_rng(12)
    for _ in range(30):
        x = _heavy_tailed(rng, 7)
        support = (rng.random(7) < 0.7).astype("float64")
        values = _np(Ternary().project(x, support).values).astype("float64")
        kept = x[support == 1]
        best = _brute_force(kept, (-1, 0, 1)) if kept.size else 0.0
        assert np.sum((kept - values[support == 1]) ** 2) <= best + 1e-6 * np.sum(x * x)
        assert np.all(values[support == 0] == 0)


def _grid_distance(x, m, points):
    """Post-training quantization: the best rounding over the grid of scales."""
    top = np.max(np.abs(x)) / m
    return min(
        np.sum((x - a * np.clip(np.round(x / a), -m, m)) ** 2)
        for a in (top * i / points for i in range(1, points + 1))
    )


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_is_never_worse_than_the_mse_optimal_grid_scale(bits, per_channel):
    rng = np.random.default_rng(13)
    m = 2 ** (bits - 1) - 1
    for _ in range(20):
        x = _heavy_tailed(rng, (30, 3)).astype("float32").astype("float64")
        floor = sum(_grid_distance(g, m, GRID_POINTS) for g in _groups(x, per_channel))
        fitted = _distance(Quantize(bits, per_channel=per_channel), x)
        assert fitted <= floor * (1 + 1e-5)


@pytest.mark.parametrize(
    ("make", "codes"),
    [
        (lambda i: Quantize(2, iterations=i), (-1, 0, 1)),
        (lambda i: Quantize(3, iterations=i), tuple(range(-3, 4))),
        (lambda i: PowerOfTwo(3, iterations=i), POT3),
    ],
    ids=["2-bit", "3-bit", "power-of-two-3"],
)
def test_alternation_beats_initial_rounding_and_nears_brute_force(make, codes):
    # The alternating fit is a heuristic: never worse than rounding with the
    # starting scales, and close to the optimum (gap relative to ||x||^2).
    rng = np.random.default_rng(5)
    gaps = []
    for _ in range(40):
        x = rng.normal(size=5)
        fitted = _distance(make(5), x)
        assert fitted <= _distance(make(0), x) + 1e-9
        gaps.append((fitted - _brute_force(x, codes)) / np.sum(x * x))
    assert min(gaps) > -1e-6
    assert np.mean(gaps) < 0.01 and max(gaps) < 0.1


# -- support and chains --------------------------------------------------------


@pytest.mark.parametrize(("constraint", "codes"), QUANTIZERS, ids=IDS)
def test_support_is_respected(constraint, codes):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 4)).astype("float32")
    support = (rng.random((6, 4)) < 0.6).astype("float32")
    result = constraint.project(x, support)
    values = _np(result.values)
    assert np.all(values[support == 0] == 0)
    np.testing.assert_array_equal(_np(result.support), support)
    if isinstance(constraint, Binary):
        assert np.all(values[support == 1] != 0)


@pytest.mark.parametrize("quantizer", [Binary(), Ternary(), Quantize(4), PowerOfTwo(3)], ids=repr)
def test_chain_with_sparsity_quantizes_only_the_survivors(quantizer):
    x = np.random.default_rng(7).normal(size=(20, 10)).astype("float32")
    pruned = _np(Sparsity(0.9)(x))
    chained = (Sparsity(0.9) & quantizer).project(x)
    values = _np(chained.values)
    np.testing.assert_array_equal(_np(chained.support), pruned != 0)
    assert np.all(values[pruned == 0] == 0)
    np.testing.assert_allclose(values, _np(quantizer.project(pruned, pruned != 0).values))
    if isinstance(quantizer, Binary):
        assert np.count_nonzero(values) == 20


def test_freezes_values():
    for constraint, _ in QUANTIZERS:
        assert constraint.freezes_values
    assert (Sparsity(0.5) & Quantize(4)).freezes_values


# -- diagnostics ---------------------------------------------------------------


def test_diagnostics_level_distance_and_on_level():
    x = np.array([1.0, -1.0, 1.0, 3.0], "float32")
    logs = {k: float(v) for k, v in Binary().diagnostics(x, None).items()}
    # a = 1.5: distance sqrt(3 * 0.25 + 2.25) / sqrt(12), no weight on its level.
    assert logs == pytest.approx({"level_distance": np.sqrt(3.0 / 12.0), "on_level": 0.0})
    on = np.array([0.5, -0.5, 0.0, 0.5], "float32")
    logs = {k: float(v) for k, v in Ternary().diagnostics(on, np.array([1, 1, 1, 0.0])).items()}
    # The unsupported 0.5 counts in the distance (its level is 0), not in on_level.
    assert logs == pytest.approx({"level_distance": np.sqrt(1.0 / 3.0), "on_level": 1.0})


def test_chain_diagnostics_measure_against_the_survivors():
    x = np.array([4.0, -4.0, 0.1, 4.0], "float32")
    logs = (Sparsity(0.25) & Binary()).diagnostics(x, None)
    assert float(logs["level_distance"]) == pytest.approx(0.1 / np.sqrt(48.01), rel=1e-5)
    assert float(logs["on_level"]) == pytest.approx(1.0)


# -- configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    "constraint",
    [
        Binary(per_channel=True),
        Ternary(iterations=2),
        Quantize(4, per_channel=True, iterations=0),
        PowerOfTwo(5),
        Sparsity(0.9) & Quantize(4),
    ],
    ids=repr,
)
def test_config_round_trips(constraint):
    assert type(constraint).from_config(constraint.get_config()) == constraint
    serialized = keras.saving.serialize_keras_object(constraint)
    assert keras.saving.deserialize_keras_object(serialized) == constraint
    assert get(serialized) == constraint
    chained = Chain(Sparsity(0.5), serialized) if not isinstance(constraint, Chain) else constraint
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(chained))
    assert again == chained


def test_get_by_name_and_top_level_exports():
    assert get("binary") == Binary()
    assert get("Binary") == tfadmm.Binary()
    assert get("ternary") == tfadmm.Ternary()
    assert tfadmm.Quantize is Quantize and tfadmm.PowerOfTwo is PowerOfTwo


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Quantize(1), "Invalid `bits`: expected an integer in [2, 8]. Received: bits=1"),
        (lambda: Quantize(9), "Invalid `bits`: expected an integer in [2, 8]. Received: bits=9"),
        (
            lambda: Quantize(4.0),
            "Invalid `bits`: expected an integer in [2, 8]. Received: bits=4.0",
        ),
        (
            lambda: Quantize(True),
            "Invalid `bits`: expected an integer in [2, 8]. Received: bits=True",
        ),
        (
            lambda: PowerOfTwo(7),
            "Invalid `bits`: expected an integer in [2, 6]. Received: bits=7",
        ),
        (
            lambda: Binary(per_channel="yes"),
            "Invalid `per_channel`: expected a boolean. Received: per_channel='yes'",
        ),
        (
            lambda: Ternary(iterations=-1),
            "Invalid `iterations`: expected an integer >= 0. Received: iterations=-1",
        ),
        (
            lambda: Quantize(4, iterations=2.5),
            "Invalid `iterations`: expected an integer >= 0. Received: iterations=2.5",
        ),
    ],
)
def test_error_messages(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


# -- in a model: hard mapping, retraining, progressive mapping -----------------


def _data(n=64):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def _model():
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="fc1"),
            keras.layers.Dense(8, activation="relu", name="fc2"),
            keras.layers.Dense(2, name="fc3"),
        ]
    )


def _compile(model, optimizer=None):
    model.compile(
        optimizer or keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _kernels(admm_model):
    return {s.label: _np(v).copy() for s, v in admm_model.pairs()}


def test_fit_logs_level_diagnostics_during_admm():
    x, y = _data()
    admm_model = _compile(tfadmm.wrap(_model(), {"fc1": Binary(), "fc3": Quantize(3)}))
    history = admm_model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    for key in ("fc1_level_distance", "fc1_on_level", "fc3_level_distance", "fc3_on_level"):
        assert key in history


def test_quantized_levels_survive_adamw_with_weight_decay():
    x, y = _data()
    admm_model = tfadmm.wrap(_model(), {"fc1": Binary(), "fc2": Sparsity(0.5) & Quantize(3)})
    _compile(admm_model).fit(x, y, batch_size=32, epochs=1, verbose=0)
    tfadmm.project(admm_model)
    mapped = _kernels(admm_model)
    assert tfadmm.fully_mapped(admm_model)
    last = _np(admm_model.model.get_layer("fc3").kernel).copy()
    _compile(admm_model, keras.optimizers.AdamW(0.05, weight_decay=0.5))
    admm_model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    after = _kernels(admm_model)
    np.testing.assert_array_equal(after["fc1"], mapped["fc1"])
    np.testing.assert_array_equal(after["fc2"], mapped["fc2"])
    assert len(np.unique(after["fc1"])) == 2
    assert np.count_nonzero(after["fc2"]) <= 32
    assert not np.array_equal(_np(admm_model.model.get_layer("fc3").kernel), last)
    tfadmm.project(admm_model)  # projecting a mapped model again changes nothing
    again = _kernels(admm_model)
    np.testing.assert_array_equal(again["fc1"], mapped["fc1"])
    np.testing.assert_array_equal(again["fc2"], mapped["fc2"])


def test_progressive_mapping_counts_and_frozen_weights(tmp_path):
    x, y = _data()
    targets = {"fc1": Quantize(3), "fc2": Sparsity(0.5) & Binary(), "fc3": Sparsity(0.5)}
    admm_model = _compile(tfadmm.wrap(_model(), targets))
    admm_model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    states = {s.label: s for s, _ in admm_model.pairs()}

    def unmapped(label):
        return int(np.sum(_np(states[label].mask)))

    expected = {"fc1": [33, 18, 3, 0], "fc2": [22, 12, 2, 0]}  # 48 and 32 to map, 30 %
    frozen = {}
    for step in range(4):
        assert not tfadmm.fully_mapped(admm_model)
        tfadmm.project(admm_model, fraction=0.3)
        kernels = _kernels(admm_model)
        for label in ("fc1", "fc2"):
            assert unmapped(label) == expected[label][step]
            held = _np(states[label].mask) == 0
            np.testing.assert_array_equal(kernels[label][held], _np(states[label].z)[held])
            if label in frozen:  # what an earlier step mapped never moves
                old_held, old_values = frozen[label]
                np.testing.assert_array_equal(kernels[label][old_held], old_values[old_held])
            frozen[label] = (held, kernels[label])
        # Pruning maps fully at the first step; its survivors keep training.
        assert np.count_nonzero(kernels["fc3"]) == 8
        assert np.count_nonzero(kernels["fc2"]) <= 32
        if step == 1:  # the state survives a save in between
            admm_model.save(tmp_path / "mid.keras")
            admm_model = _compile(keras.models.load_model(tmp_path / "mid.keras"))
            states = {s.label: s for s, _ in admm_model.pairs()}
        admm_model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert tfadmm.fully_mapped(admm_model)
    kernels = _kernels(admm_model)
    scale = float(_np(states["fc1"].scale)[0])
    np.testing.assert_allclose(kernels["fc1"] / scale, np.round(kernels["fc1"] / scale), atol=1e-5)
    assert np.max(np.abs(np.round(kernels["fc1"] / scale))) <= 3
    assert len(np.unique(kernels["fc2"][kernels["fc2"] != 0])) <= 2


def test_map_progressively_and_strip_finish_the_mapping():
    x, y = _data()
    admm_model = _compile(tfadmm.wrap(_model(), {"fc*": Ternary()}))
    admm_model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    calls = []
    tfadmm.map_progressively(admm_model, calls.append, fraction=0.5)
    assert len(calls) == 2 and tfadmm.fully_mapped(admm_model)

    other = _compile(tfadmm.wrap(_model(), {"fc1": Binary()}))
    tfadmm.project(other, fraction=0.25)
    assert not tfadmm.fully_mapped(other)
    with pytest.raises(ValueError, match="progressive mapping is unfinished"):
        tfadmm.wrap(other, {"fc3": Binary()})
    plain = tfadmm.strip(other)
    assert len(np.unique(_np(plain.get_layer("fc1").kernel))) == 2


def test_project_fraction_error_message():
    admm_model = tfadmm.wrap(_model(), {"fc1": Binary()})
    with pytest.raises(ValueError) as error:
        tfadmm.project(admm_model, fraction=0)
    assert str(error.value) == (
        "Invalid `fraction`: expected a number in (0, 1], or None to map every "
        "weight at once. Received: fraction=0"
    )


def _cnn():
    inputs = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    h = keras.layers.Conv2D(4, 3, name="conv2")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(8, activation="relu", name="fc1")(h)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc2")(h))


def test_two_stage_binary_keeps_middle_layers_on_their_levels():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(32, 12, 12, 1)).astype("float32")
    y = rng.integers(0, 3, size=32)
    stage1 = _compile(tfadmm.wrap(_cnn(), {"conv2": Binary(), "fc1": Binary()}))
    stage1.fit(x, y, batch_size=16, epochs=1, verbose=0)
    tfadmm.project(stage1)
    stage1.fit(x, y, batch_size=16, epochs=1, verbose=0)
    middle = {k: v for k, v in _kernels(stage1).items() if k in ("conv2", "fc1")}

    stage2 = _compile(tfadmm.wrap(stage1, {"conv1": Binary(), "fc2": Binary()}))
    stage2.fit(x, y, batch_size=16, epochs=1, verbose=0)
    tfadmm.project(stage2)
    stage2.fit(x, y, batch_size=16, epochs=1, verbose=0)
    plain = tfadmm.strip(stage2)
    for name in ("conv1", "conv2", "fc1", "fc2"):
        kernel = _np(plain.get_layer(name).kernel)
        assert len(np.unique(kernel)) == 2 and np.unique(kernel).sum() == pytest.approx(0)
        if name in middle:
            np.testing.assert_array_equal(kernel, middle[name])

    # A stripped model re-wrapped with `freeze` holds the quantized kernels.
    held = {name: _np(plain.get_layer(name).kernel).copy() for name in ("conv1", "conv2")}
    stage3 = _compile(tfadmm.wrap(plain, {"fc1": Sparsity(0.5)}, freeze=["conv*"]))
    stage3.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for name, kernel in held.items():
        np.testing.assert_array_equal(_np(plain.get_layer(name).kernel), kernel)
