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
    }


@pytest.mark.parametrize("name", list(_kernels()))
@pytest.mark.parametrize("widths", [encoding.ANY_WIDTH, encoding.PACKED_WIDTHS])
def test_decode_of_encode_is_exact(name, widths):
    kernel = _kernels()[name]
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


def test_binary_kernel_costs_one_bit_a_weight_plus_codebook():
    plan = encoding.plan(np.where(np.arange(64) % 3, 0.5, -0.5).astype("float32"))
    assert (plan.index, plan.value_bits, plan.codebook_size) == ("none", 1, 2)
    assert plan.total_bits == 64 * 1 + 2 * 32


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
