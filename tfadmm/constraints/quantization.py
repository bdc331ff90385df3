"""Quantization: weights on a scaled level set, `W = a * Q` with codes `Q` from a fixed set.

Every quantizer here solves, for each scale group (the whole tensor, or one
output channel: the last kernel axis),

    argmin_{a >= 0, Q}  ||x - a * Q||^2  over the supported entries,

with `Q` from its code set, and returns zero outside the support (zero stays
reserved for pruned weights). Binary and Ternary are solved exactly (a closed
form; one sort). The other sets alternate `Q <- nearest codes of x / a` and
`a <- <x, Q> / <Q, Q>`, which never increases the distance, and keep the best
iterate. That is a heuristic (the problem is not convex): close to, not always
at, the optimum.

| class        | codes                                    | scale                                  |
|--------------|------------------------------------------|----------------------------------------|
| `Binary`     | {-1, +1}                                 | exact: mean abs                        |
| `Ternary`    | {-1, 0, +1}                              | exact: mean of the best k largest abs  |
| `Quantize`   | {-m .. m}, m = 2^(bits-1) - 1            | from mean abs / (m/2), max/m, MSE grid |
| `PowerOfTwo` | {0} and {+-2^-k : k = 0 .. 2^(bits-1)-2} | from max abs                           |

Each quantizer also exposes the two halves of its projection, `fit_scale` and
`quantize(x, scale)`, so progressive mapping (`tfadmm.project(model,
fraction=...)`) can snap weights to the levels of a scale fixed earlier.
"""

from __future__ import annotations

import functools

import keras
from keras import ops

from tfadmm.constraints.base import Constraint, Projection, full_support

_EPS = 1e-12
#: Candidate scales `max |x| / m * i / GRID_POINTS`, `i = 1 .. GRID_POINTS`, of
#: `Quantize`'s MSE-optimal starting scale.
GRID_POINTS = 32
#: Relative tolerance of the `on_level` diagnostic.
ON_LEVEL_TOLERANCE = 1e-6


def _group_axes(x, per_channel):
    """The axes one scale is shared over: all of them, or all but the last."""
    return tuple(range(len(x.shape) - 1)) if per_channel else tuple(range(len(x.shape)))


def _group_sum(x, per_channel):
    return ops.sum(x, axis=_group_axes(x, per_channel), keepdims=True)


def _mean_abs(x, support, per_channel):
    count = _group_sum(support, per_channel)
    return _group_sum(ops.abs(x) * support, per_channel) / ops.maximum(count, 1.0)


def _max_abs(x, support, per_channel):
    return ops.max(ops.abs(x) * support, axis=_group_axes(x, per_channel), keepdims=True)


def _safe(scale):
    """`scale`, with 1 where it is 0 (an empty or all-zero group), to divide by."""
    return ops.where(scale > 0, scale, ops.ones_like(scale))


def _levels(codes, scale, support):
    """`scale * codes` inside the support, +0.0 outside (never -0.0)."""
    values = scale * codes
    return ops.where((support > 0) & ops.not_equal(codes, 0), values, ops.zeros_like(values))


def binary_codes(r):
    """Nearest code of {-1, +1} to `r`; 0 counts as positive."""
    return ops.where(r >= 0, ops.ones_like(r), -ops.ones_like(r))


def uniform_codes(r, m):
    """Nearest code of {-m, ..., m} to `r` (ties round to even)."""
    return ops.clip(ops.round(r), -float(m), float(m))


def power_of_two_codes(r, bits):
    """Nearest code of {0} U {+-2^-k : k = 0 .. 2^(bits-1) - 2} to `r`.

    `|r|` in `[0.75 * 2^p, 1.5 * 2^p)` is closest to `2^p`; below half the
    smallest power it is closest to 0; above 1 it clips to 1.
    """
    smallest = -float(2 ** (bits - 1) - 2)
    magnitude = ops.abs(r)
    exponent = ops.clip(ops.floor(ops.log2(magnitude / 0.75)), smallest, 0.0)
    power = ops.power(ops.cast(2.0, r.dtype), exponent)
    zero = magnitude < 0.5 * 2.0**smallest
    return ops.where(zero, ops.zeros_like(r), ops.sign(r) * power)


def _squared_distance(x, codes, scale, support, per_channel):
    return _group_sum(ops.square(x - scale * codes) * support, per_channel)


def fit_alternating(x, codes_fn, initial_scales, iterations, per_channel=False, support=None):
    """The scale of the best iterate of `Q <- codes_fn(x / a)`, `a <- <x, Q> / <Q, Q>`.

    Each half-step minimises `||x - a * Q||^2` over one variable, so the
    distance never grows along one run; the problem is not convex, so the run
    starts from each of `initial_scales` and the best iterate of all is kept.

    Args:
        x: a float tensor.
        codes_fn: maps `x / a` to the nearest codes.
        initial_scales: starting scales, each shaped like one scale per group.
        iterations: scale updates after each start.
        per_channel: one scale per output channel (last axis) instead of one.
        support: optional 0/1 tensor; only supported entries count.

    Returns:
        The scale, `x`'s rank with size 1 along the grouped axes.
    """
    support = full_support(x, support)
    best_scale, best = None, None
    for scale in initial_scales:
        for step in range(iterations + 1):
            codes = codes_fn(x / _safe(scale)) * support
            distance = _squared_distance(x, codes, scale, support, per_channel)
            best_scale, best = _keep_better(best_scale, best, scale, distance)
            if step == iterations:
                break
            norm = _group_sum(ops.square(codes), per_channel)
            fitted = _group_sum(x * codes, per_channel) / ops.maximum(norm, _EPS)
            scale = ops.where(norm > 0, fitted, scale)
    return best_scale


def _snap(x, codes_fn, scale, support):
    return Projection(_levels(codes_fn(x / _safe(scale)), scale, support), support)


def binary_scale(x, per_channel=False, support=None):
    """The optimal binary scale: `mean |x|` over the support, per group."""
    return _mean_abs(x, full_support(x, support), per_channel)


def grid_scale(x, codes_fn, top, points=GRID_POINTS, per_channel=False, support=None):
    """The MSE-optimal scale among `top * i / points`, `i = 1 .. points`, per group.

    Post-training quantization's scale search: rounding `x / a` to the codes,
    the candidate with the smallest `||x - a * Q||^2` wins (the smaller one on
    ties).

    Args:
        x: a float tensor.
        codes_fn: maps `x / a` to the nearest codes.
        top: the largest candidate, one per group (keepdims shape).
        points: how many candidates.
        per_channel: one scale per output channel (last axis) instead of one.
        support: optional 0/1 tensor; only supported entries count.

    Returns:
        The scale, `x`'s rank with size 1 along the grouped axes.
    """
    support = full_support(x, support)
    best_scale, best = None, None
    for i in range(1, points + 1):
        scale = top * (i / points)
        codes = codes_fn(x / _safe(scale)) * support
        distance = _squared_distance(x, codes, scale, support, per_channel)
        best_scale, best = _keep_better(best_scale, best, scale, distance)
    return best_scale


def _keep_better(best_scale, best, scale, distance):
    """Per group, `(scale, distance)` where it is strictly closer than the best so far."""
    if best is None:
        return scale, distance
    better = distance < best
    return ops.where(better, scale, best_scale), ops.where(better, distance, best)


def uniform_scale(x, m, initial_divisor=1.0, per_channel=False, iterations=5, support=None):
    """The fitted scale of the levels `a * {-m, ..., m}`.

    Alternation starts from `mean |x| / initial_divisor` (the papers' start),
    from `max |x| / m` (the largest weight on the top level, which keeps any
    point that uses the top level where it is) and from the MSE-optimal scale
    of a grid search (`grid_scale`), and keeps the best iterate of all.
    """
    support = full_support(x, support)
    codes_fn = functools.partial(uniform_codes, m=m)
    top = _max_abs(x, support, per_channel) / m
    starts = (
        _mean_abs(x, support, per_channel) / initial_divisor,
        top,
        grid_scale(x, codes_fn, top, GRID_POINTS, per_channel, support),
    )
    return fit_alternating(x, codes_fn, starts, iterations, per_channel, support)


def ternary_scale(x, per_channel=False, support=None):
    """The optimal ternary scale, exactly: one sort per group.

    With the k largest `|x|` on `+-a` and the rest on 0, the best `a` is their
    mean and the distance is `||x||^2 - (sum of the k largest)^2 / k`: the
    scale is the mean of the k largest `|x|` for the k that maximises
    `(their sum)^2 / k` (the smallest such k on ties).
    """
    support = full_support(x, support)
    magnitudes = ops.abs(x) * support
    channels = x.shape[-1] if per_channel else 1
    columns = ops.reshape(magnitudes, (-1, channels))
    ordered = ops.flip(ops.sort(columns, axis=0), axis=0)  # largest first, per column
    sums = ops.cumsum(ordered, axis=0)
    counts = ops.cast(ops.arange(1, ops.shape(ordered)[0] + 1), x.dtype)[:, None]
    best = ops.argmax(ops.square(sums) / counts, axis=0)
    chosen = ops.take_along_axis(sums, best[None, :], axis=0)[0]
    scale = chosen / ops.cast(best + 1, x.dtype)
    kept = [1] * len(x.shape)
    if per_channel:
        kept[-1] = channels
    return ops.reshape(scale, kept)


def power_of_two_scale(x, bits, per_channel=False, iterations=5, support=None):
    """The fitted scale of the power-of-two levels, from `max |x|`."""
    support = full_support(x, support)
    return fit_alternating(
        x,
        lambda r: power_of_two_codes(r, bits),
        (_max_abs(x, support, per_channel),),
        iterations,
        per_channel,
        support,
    )


def project_binary(x, per_channel=False, support=None):
    """Projects `x` onto `a * {-1, +1}` inside the support, 0 outside.

    Solves `argmin_{a, Q} ||x - a Q||^2` with `Q in {-1, +1}` on the support:
    `Q = sign(x)` (0 counts as +1), `a = mean |x|` over the support (per output
    channel with `per_channel`). The closed form is optimal.

    Example:
        >>> project_binary(np.array([0.5, -1.5, 0.0, 2.0])).values
        # [1., -1., 1., 1.]
    """
    support = full_support(x, support)
    return _snap(x, binary_codes, binary_scale(x, per_channel, support), support)


def project_ternary(x, per_channel=False, support=None):
    """Projects `x` onto `a * {-1, 0, +1}`: the exact Euclidean projection.

    Solves `argmin_{a >= 0, Q} ||x - a Q||^2`, `Q in {-1, 0, +1}` on the
    support: `a` from `ternary_scale` (the mean of the best k largest `|x|`),
    `Q = clip(round(x / a), -1, 1)`, which puts exactly those k on `+-a`; a
    supported weight may land on 0 (a level).

    Example:
        >>> project_ternary(np.array([0.1, -1.0, 1.2, 0.9])).values
        # [0., -1.033, 1.033, 1.033]
    """
    support = full_support(x, support)
    scale = ternary_scale(x, per_channel, support)
    return _snap(x, lambda r: uniform_codes(r, 1), scale, support)


def project_quantize(x, bits, per_channel=False, iterations=5, support=None):
    """Projects `x` onto `a * {-m, ..., m}`, `m = 2^(bits-1) - 1`, approximately.

    Alternates `Q <- clip(round(x / a), -m, m)`, `a <- <x, Q> / <Q, Q>` from
    `a = mean |x| / (m / 2)` and from `a = max |x| / m`, keeping the best
    iterate; a supported weight may land on 0 (a level).

    Example:
        >>> project_quantize(np.array([0.1, -1.0, 2.0, 3.0]), bits=3).values
        # [0., -1., 2., 3.]
    """
    support = full_support(x, support)
    m = 2 ** (bits - 1) - 1
    scale = uniform_scale(x, m, m / 2.0, per_channel, iterations, support)
    return _snap(x, lambda r: uniform_codes(r, m), scale, support)


def project_power_of_two(x, bits, per_channel=False, iterations=5, support=None):
    """Projects `x` onto `a * ({0} U {+-2^-k : k = 0 .. 2^(bits-1) - 2})`, approximately.

    `bits` counts a sign bit and `bits - 1` bits for the magnitude: 0 or one of
    `2^(bits-1) - 1` powers of two, so there are `2^bits - 1` levels, as many
    as `Quantize(bits)`, and a multiplication by a level is a shift. Alternates
    nearest codes and `a <- <x, Q> / <Q, Q>` from `a = max |x|`; a supported
    weight may land on 0 (a level).

    Example:
        >>> project_power_of_two(np.array([1.0, 0.5, -0.3, 0.01]), bits=3).values
        # [1.01, 0.505, -0.252, 0.]  (the fitted scale is 1.01)
    """
    support = full_support(x, support)
    scale = power_of_two_scale(x, bits, per_channel, iterations, support)
    return _snap(x, lambda r: power_of_two_codes(r, bits), scale, support)


class Quantizer(Constraint):
    """Base class of the level-set constraints: `W = a * Q`, frozen after mapping.

    Subclasses define `codes(r)` (the nearest code to `r = x / a`) and
    `fit_scale(x, support)`; `quantize` and `project` follow.

    Args:
        per_channel: one scale per output channel (the last kernel axis)
            instead of one per tensor.
    """

    freezes_values = True

    def __init__(self, per_channel=False):
        if not isinstance(per_channel, bool):
            raise ValueError(
                f"Invalid `per_channel`: expected a boolean. Received: per_channel={per_channel!r}"
            )
        self.per_channel = per_channel

    def codes(self, r):
        raise NotImplementedError(f"{type(self).__name__} must implement `codes`.")

    def fit_scale(self, x, support=None):
        """The scale of `project(x, support)`, one per group (keepdims shape)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `fit_scale`.")

    def quantize(self, x, scale, support=None):
        """The nearest levels `scale * codes(x / scale)`, 0 outside the support.

        `scale` broadcasts against `x` (a scalar, or one value per output channel).
        """
        support = full_support(x, support)
        scale = ops.cast(scale, x.dtype)
        return _levels(self.codes(x / _safe(scale)), scale, support)

    def project(self, x, support=None):
        support = full_support(x, support)
        return Projection(self.quantize(x, self.fit_scale(x, support), support), support)

    def diagnostics(self, w, support):
        """`level_distance`: `||w - project(w)|| / ||w||`; `on_level`: the
        fraction of supported weights within 1e-6 of their level (relative to
        the level, or to the scale for the zero level)."""
        support = full_support(w, support)
        scale = self.fit_scale(w, support)
        levels = self.quantize(w, scale, support)
        norm = ops.sqrt(ops.sum(ops.square(w)))
        distance = ops.sqrt(ops.sum(ops.square(w - levels))) / ops.maximum(norm, _EPS)
        tolerance = ON_LEVEL_TOLERANCE * ops.maximum(ops.abs(levels), scale)
        close = ops.cast(ops.abs(w - levels) <= tolerance, w.dtype) * support
        on_level = ops.sum(close) / ops.maximum(ops.sum(support), 1.0)
        return {"level_distance": distance, "on_level": on_level}

    def get_config(self):
        return {"per_channel": self.per_channel}


def _check_int(name, value, low, high=None):
    bad = isinstance(value, bool) or not isinstance(value, int)
    if bad or value < low or (high is not None and value > high):
        expected = (
            f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        )
        raise ValueError(f"Invalid `{name}`: expected {expected}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="tfadmm")
class Binary(Quantizer):
    """Binary weights `a * {-1, +1}`: 1 bit per weight plus the scale.

    The projection is the closed form `Q = sign(W)`, `a = mean |W|` (optimal).
    Zero is never a level: a supported weight equal to 0 goes to `+a`, and
    only weights pruned by an earlier stage or constraint are 0.

    Args:
        per_channel: one scale per output channel instead of one per kernel.

    Example:
        >>> tfadmm.wrap(model, {"conv2": tfadmm.Binary(), "fc1": tfadmm.Binary()})
    """

    def codes(self, r):
        return binary_codes(r)

    def fit_scale(self, x, support=None):
        return binary_scale(x, self.per_channel, support)


@keras.saving.register_keras_serializable(package="tfadmm")
class Ternary(Quantizer):
    """Ternary weights `a * {-1, 0, +1}`.

    The projection is exact (`project_ternary`: one sort). A supported weight
    may be mapped to 0: that is a level here, so a ternary kernel can end with
    more zeros than its pruning left.

    Args:
        per_channel: one scale per output channel instead of one per kernel.
        iterations: unused since the projection became exact; accepted so that
            models saved by earlier versions load.
    """

    def __init__(self, per_channel=False, iterations=5):
        super().__init__(per_channel)
        _check_int("iterations", iterations, 0)
        self.iterations = iterations

    def codes(self, r):
        return uniform_codes(r, 1)

    def fit_scale(self, x, support=None):
        return ternary_scale(x, self.per_channel, support)

    def get_config(self):
        return {**super().get_config(), "iterations": self.iterations}


@keras.saving.register_keras_serializable(package="tfadmm")
class Quantize(Quantizer):
    """Symmetric equal-interval levels `a * {-m, ..., m}`, `m = 2^(bits-1) - 1`.

    `Quantize(4)` has the 15 levels `a * {-7, ..., 7}`. A supported weight may
    be mapped to 0 (a level).

    Args:
        bits: bits per weight, an integer in [2, 8].
        per_channel: one scale per output channel instead of one per kernel.
        iterations: scale updates of the alternating fit from each start
            (0: the best of rounding with `mean |W| / (m / 2)`, with
            `max |W| / m` and with the MSE-optimal scale of a grid search).

    Example:
        >>> tfadmm.wrap(model, {"fc*": tfadmm.Sparsity(0.9) & tfadmm.Quantize(4)})
    """

    #: The smallest and largest `bits`.
    BITS = (2, 8)

    def __init__(self, bits, per_channel=False, iterations=5):
        _check_int("bits", bits, *self.BITS)
        super().__init__(per_channel)
        _check_int("iterations", iterations, 0)
        self.bits = bits
        self.iterations = iterations

    @property
    def max_code(self):
        return 2 ** (self.bits - 1) - 1

    def codes(self, r):
        return uniform_codes(r, self.max_code)

    def fit_scale(self, x, support=None):
        m = self.max_code
        return uniform_scale(x, m, m / 2.0, self.per_channel, self.iterations, support)

    def get_config(self):
        return {"bits": self.bits, **super().get_config(), "iterations": self.iterations}


@keras.saving.register_keras_serializable(package="tfadmm")
class PowerOfTwo(Quantizer):
    """Power-of-two levels `a * ({0} U {+-1, +-1/2, ..., +-2^-(2^(bits-1)-2)})`.

    A sign bit plus `bits - 1` bits for the magnitude, which is 0 or one of
    `2^(bits-1) - 1` powers of two: `PowerOfTwo(3)` has the levels
    `a * {0, +-1/4, +-1/2, +-1}`, as many (`2^bits - 1`) as `Quantize(bits)`,
    and multiplying by one is a shift. A supported weight may be mapped to 0
    (a level). The scale is fitted by alternation from `a = max |W|`.

    Args:
        bits: bits per weight, an integer in [2, 6] (6 bits reach 2^-30).
        per_channel: one scale per output channel instead of one per kernel.
        iterations: scale updates of the alternating fit.
    """

    #: The smallest and largest `bits` (6 bits reach 2^-30).
    BITS = (2, 6)

    def __init__(self, bits, per_channel=False, iterations=5):
        _check_int("bits", bits, *self.BITS)
        super().__init__(per_channel)
        _check_int("iterations", iterations, 0)
        self.bits = bits
        self.iterations = iterations

    def codes(self, r):
        return power_of_two_codes(r, self.bits)

    def fit_scale(self, x, support=None):
        return power_of_two_scale(x, self.bits, self.per_channel, self.iterations, support)

    def get_config(self):
        return {"bits": self.bits, **super().get_config(), "iterations": self.iterations}
