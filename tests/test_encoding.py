import numpy as np
import pytest
import tensorflow as tf

from tfadmm import encoding


def _kernels():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 20)).astype("float32")
    sparse = np.where(np.abs(w) > 1.8, w, 0).astype("float32")
    ternary = np.where(w > 0.5, 0.3, np.where(w < -0.5, -0.3, 0)).astype("float32")
    return {
        "dense": w,
        "sparse": sparse,
        "ternary": ternary,
        "binary": np.where(w > 0, 0.1, -0.1).astype("float32"),
        "zeros": np.zeros((4, 5), "float32"),
        "long gaps": np.eye(40, dtype="float32") * 3.0,
        "binary per channel": (np.sign(w) * np.linspace(0.1, 2.0, 20)).astype("float32"),
        "ternary per channel": (ternary * np.linspace(0.1, 2.0, 20)).astype("float32"),
        "sparse binary per channel": (
            np.where(rng.random((400, 20)) < 0.02, np.sign(rng.normal(size=(400, 20))), 0)
            * np.linspace(0.1, 2.0, 20)
        ).astype("float32"),
        "4-bit per channel": (
            np.round(np.clip(w, -1.75, 1.75) * 4) * np.linspace(0.1, 2.0, 20)
        ).astype("float32"),
    }


@pytest.mark.parametrize("name", list(_kernels()))
def test_decode_of_encode_is_exact(name):
    # Only the export encodes; it plans with the widths that pack into bytes.
    kernel = _kernels()[name]
    widths = encoding.PACKED_WIDTHS
    plan = encoding.plan(kernel, index_widths=widths, code_widths=widths)
    arrays = encoding.encode(kernel, plan)
    decoded = encoding.decode(
        {k: tf.constant(v) for k, v in arrays.items()}, plan, kernel.shape, tf.float32
    )
    np.testing.assert_array_equal(decoded.numpy(), kernel)


@pytest.mark.parametrize("width", [1, 2, 4, 8, 16])
def test_unpack_inverts_pack(width):
    codes = np.random.default_rng(0).integers(0, 2**width, size=37)
    packed = encoding.pack(codes, width)
    assert packed.nbytes == -(-37 * width // 8)
    np.testing.assert_array_equal(encoding.unpack(tf.constant(packed), width, 37).numpy(), codes)


def test_pack_refuses_a_width_that_does_not_fit_bytes():
    with pytest.raises(ValueError, match=r"^pack: expected a width in \(1, 2, 4, 8, 16\)\. "
                                         r"Received: 9$"):
        encoding.pack([1, 2], 9)


def test_binary_kernel_costs_one_bit_a_weight_plus_codebook():
    plan = encoding.plan(np.where(np.arange(64) % 3, 0.5, -0.5).astype("float32"))
    assert (plan.index, plan.value_bits, plan.codebook_size) == ("none", 1, 2)
    assert plan.total_bits == 64 * 1 + 2 * 32


def test_per_channel_binary_kernel_gets_a_codebook_per_channel():
    scales = np.arange(1, 9, dtype="float32")  # 16 distinct values overall, 2 per channel
    kernel = np.where(np.arange(64 * 8).reshape(64, 8) % 3, 1.0, -1.0).astype("float32") * scales
    plan = encoding.plan(kernel)
    assert (plan.index, plan.value_bits, plan.codebook_size, plan.channels) == ("none", 1, 16, 8)
    assert plan.total_bits == 64 * 8 * 1 + 16 * 32


def test_single_nonzero_uses_a_one_bit_relative_index():
    kernel = np.zeros(100, "float32")
    kernel[0] = 2.0
    plan = encoding.plan(kernel)
    assert (plan.index, plan.index_width, plan.entries) == ("relative", 1, 1)
    assert plan.total_bits == 32 + 1


def test_relative_index_pays_fillers_for_long_gaps():
    kernel = np.zeros(1000, "float32")
    kernel[[3, 900]] = [1.5, -2.5]
    plan = encoding.plan(kernel, index_widths=(4,))
    # Gaps 4 and 897: ceil(897 / 16) = 57 entries for the second, 56 of them fillers.
    assert plan.entries == 1 + 57
    assert plan.total_bits == min(58 * (32 + 4), 2 * 32 + 1000, 58 * (2 + 4) + 3 * 32)


def test_all_zero_kernel_costs_nothing():
    assert encoding.plan(np.zeros((3, 3), "float32")).total_bits == 0
