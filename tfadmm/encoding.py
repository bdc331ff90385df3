"""How a compressed kernel is stored: values, an optional codebook, an index.

A kernel of `n` weights with `nnz` non-zeros is stored as one of

- **values**: the entries that are kept, either as floats (the kernel's dtype)
  or as integer codes into a small codebook of distinct values (a quantized
  kernel: a binary kernel needs 1 bit per value, a 4-bit one 4 bits). A
  kernel quantized with one scale per output channel has few distinct values
  in each channel but many overall: it gets one codebook per output channel
  (the last axis), each as long as the longest;
- **an index** saying where those values go:
    - `"none"`: every entry is stored (no zeros to skip);
    - `"bitmask"`: one bit per weight, 1 where the weight is non-zero;
    - `"relative"`: for each stored value, the distance to the previous one in
      `b` bits (Han et al., 2016); a gap longer than `2**b` is bridged by
      filler entries whose value is 0, so fillers cost a value and an index
      entry each.

The cost in bits of a plan is

    entries * value_bits + codebook_size * codebook_bits + index_bits

with `index_bits` = 0 (`none`), `n` (`bitmask`) or `entries * b`
(`relative`), and `entries` = `n`, `nnz` or `nnz + fillers(b)`. `plan` picks
the cheapest plan among the widths it is allowed: the report allows any width
(the theoretical minimum), the SavedModel export only widths it can pack into
bytes.

Everything here is NumPy, except `decode`, which rebuilds the dense kernel with
TensorFlow ops only (it runs inside exported graphs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfadmm.lazy_tensorflow import needs_tensorflow

tf = needs_tensorflow("tfadmm.encoding (compact SavedModel kernels)")

#: Bits of one codebook entry (a float32 value).
CODEBOOK_BITS = 32
#: Widths the report may use: the theoretical minimum.
ANY_WIDTH = tuple(range(1, 17))
#: Widths that pack into bytes without straddling: what the export stores.
PACKED_WIDTHS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Plan:
    """The cheapest way found to store one kernel.

    Attributes:
        size: weights in the kernel.
        nonzeros: non-zero weights.
        dtype_bits: bits of one weight as trained (32 for float32).
        value_bits: bits of one stored value: `dtype_bits` for floats, the code
            width for a codebook.
        codebook_size: entries of the codebook, all channels together (0:
            values stored as floats).
        index: `"none"`, `"bitmask"` or `"relative"`.
        index_width: bits of one relative index (0 otherwise).
        entries: stored values, fillers included.
        total_bits: the cost, as in the module docstring.
        channels: 1 for one codebook; else the number of output channels,
            each with its own `codebook_size // channels` entries.
    """

    size: int
    nonzeros: int
    dtype_bits: int
    value_bits: int
    codebook_size: int
    index: str
    index_width: int
    entries: int
    total_bits: int
    channels: int = 1

    @property
    def index_bits(self):
        if self.index == "bitmask":
            return self.size
        return self.entries * self.index_width


def _code_width(count, widths):
    """The smallest allowed width that can number `count` codes (at least 1 bit)."""
    need = max(1, math.ceil(math.log2(max(count, 1))))
    for width in widths:
        if width >= need:
            return width
    return None


def _gaps(positions):
    """Distances between successive non-zero positions, the first from -1."""
    return np.diff(np.concatenate([[-1], positions])).astype(np.int64)


def _fillers(gaps, width):
    """Filler entries needed when a gap may be at most `2**width`."""
    if gaps.size == 0:
        return 0
    return int(np.sum((gaps - 1) >> width))


def _distinct_per_channel(kernel):
    """`(channels, most distinct non-zero values in one channel)` of a kernel's last axis."""
    kernel = np.asarray(kernel)
    if kernel.ndim < 2 or kernel.shape[-1] < 2:
        return 1, None
    columns = np.sort(kernel.reshape(-1, kernel.shape[-1]), axis=0)
    distinct = 1 + np.count_nonzero(np.diff(columns, axis=0), axis=0)
    distinct -= np.any(columns == 0, axis=0)
    return int(kernel.shape[-1]), int(distinct.max())


def plan(kernel, *, index_widths=ANY_WIDTH, code_widths=ANY_WIDTH):
    """Returns the cheapest `Plan` for a kernel (a NumPy array).

    Args:
        kernel: the kernel's values.
        index_widths: widths allowed for relative indices.
        code_widths: widths allowed for codebook codes (ascending).
    """
    flat = np.asarray(kernel).reshape(-1)
    size = int(flat.size)
    dtype_bits = int(flat.dtype.itemsize * 8)
    nonzero = flat != 0
    positions = np.flatnonzero(nonzero)
    nnz = int(positions.size)
    distinct = np.unique(flat[nonzero])
    channels, per_channel = _distinct_per_channel(kernel)
    gaps = _gaps(positions)

    # Each candidate: (index, width, entries, index_bits, stores_zeros).
    layouts = []
    if nnz == size:
        layouts.append(("none", 0, size, 0, False))
    else:
        layouts.append(("none", 0, size, 0, True))
        layouts.append(("bitmask", 0, nnz, size, False))
        for width in index_widths:
            fillers = _fillers(gaps, width)
            entries = nnz + fillers
            layouts.append(("relative", width, entries, entries * width, fillers > 0))

    best = None
    for index, width, entries, index_bits, stores_zeros in layouts:
        options = [(dtype_bits, 0, 1)]
        codes = int(distinct.size) + int(stores_zeros)
        code_width = _code_width(codes, code_widths)
        if code_width is not None and code_width < dtype_bits:
            options.append((code_width, codes, 1))
        if per_channel is not None:
            codes = per_channel + int(stores_zeros)
            code_width = _code_width(codes, code_widths)
            if code_width is not None and code_width < dtype_bits:
                options.append((code_width, channels * codes, channels))
        for value_bits, codebook, books in options:
            total = entries * value_bits + codebook * CODEBOOK_BITS + index_bits
            candidate = Plan(
                size, nnz, dtype_bits, value_bits, codebook, index, width, entries, total,
                books,
            )
            if best is None or total < best.total_bits:
                best = candidate
    return best


# -- packing -------------------------------------------------------------------


def pack(codes, width):
    """Packs non-negative integers below `2**width` into bytes (big-endian in a byte).

    Widths 1, 2, 4 and 8 give a uint8 array, 16 a uint16 array.
    """
    if width not in PACKED_WIDTHS:
        raise ValueError(f"pack: expected a width in {PACKED_WIDTHS}. Received: {width}")
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    if width == 16:
        return codes.astype(np.uint16)
    if width == 8:
        return codes.astype(np.uint8)
    per_byte = 8 // width
    padded = np.zeros(-(-codes.size // per_byte) * per_byte, dtype=np.int64)
    padded[: codes.size] = codes
    padded = padded.reshape(-1, per_byte)
    shifts = np.array([8 - width * (i + 1) for i in range(per_byte)], dtype=np.int64)
    return np.sum(padded << shifts, axis=1).astype(np.uint8)


def unpack(packed, width, count):
    """The inverse of `pack`, in TensorFlow ops: `count` int32 codes."""
    values = tf.cast(packed, tf.int32)
    if width in (8, 16):
        return values[:count]
    per_byte = 8 // width
    shifts = tf.constant([8 - width * (i + 1) for i in range(per_byte)], tf.int32)
    codes = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(values[:, None], shifts[None, :]), (1 << width) - 1
    )
    return tf.reshape(codes, [-1])[:count]


# -- encode / decode -----------------------------------------------------------


def encode(kernel, kernel_plan):
    """Returns `{name: array}` holding the kernel as `kernel_plan` says.

    Keys: `values` (floats) or `codes` + `codebook`; `bitmask` or `gaps` for
    the index.
    """
    kernel = np.asarray(kernel)
    flat = kernel.reshape(-1)
    p = kernel_plan
    if p.index == "none":
        stored = flat
        positions = None  # every entry: its position is its index
        arrays = {}
    elif p.index == "bitmask":
        stored = flat[flat != 0]
        positions = np.flatnonzero(flat)
        arrays = {"bitmask": pack((flat != 0).astype(np.int64), 1)}
    else:
        gaps = _gaps(np.flatnonzero(flat))
        limit = 1 << p.index_width
        # A gap g is written as ceil(g / limit) entries: fillers of `limit`, then the rest.
        counts = -(-gaps // limit)
        ends = np.cumsum(counts) - 1
        steps = np.full(int(counts.sum()), limit, dtype=np.int64)
        steps[ends] = gaps - (counts - 1) * limit
        stored = np.zeros(steps.size, dtype=flat.dtype)
        stored[ends] = flat[flat != 0]
        positions = np.cumsum(steps) - 1
        arrays = {"gaps": pack(steps - 1, p.index_width)}
    if p.codebook_size and p.channels > 1:
        if positions is None:
            positions = np.arange(stored.size)
        arrays["codebook"], codes = _channel_codebooks(stored, positions % p.channels, p)
        arrays["codes"] = pack(codes, p.value_bits)
    elif p.codebook_size:
        codebook, codes = np.unique(stored, return_inverse=True)
        arrays["codebook"] = codebook.astype(np.float32)
        arrays["codes"] = pack(codes, p.value_bits)
    else:
        arrays["values"] = stored
    return arrays


def _channel_codebooks(stored, channel, p):
    """`(codebooks, codes)`: each channel's distinct values, padded to one length."""
    order = np.lexsort((stored, channel))
    channels, values = channel[order], stored[order]
    new_channel = np.r_[True, channels[1:] != channels[:-1]]
    new_value = new_channel | np.r_[True, values[1:] != values[:-1]]
    pair = np.cumsum(new_value) - 1  # numbers the distinct (channel, value) pairs
    rank = pair - np.maximum.accumulate(np.where(new_channel, pair, 0))
    codes = np.empty(stored.size, np.int64)
    codes[order] = rank
    codebooks = np.zeros((p.channels, p.codebook_size // p.channels), np.float32)
    codebooks[channels[new_value], rank[new_value]] = values[new_value]
    return codebooks.reshape(-1), codes


def decode(arrays, kernel_plan, shape, dtype):
    """Rebuilds the dense kernel from `encode`'s arrays with TensorFlow ops only."""
    p = kernel_plan
    if p.index == "none":
        positions = None  # every entry: its position is its index
    elif p.index == "bitmask":
        bits = unpack(arrays["bitmask"], 1, p.size)
        positions = tf.where(bits > 0)
    else:
        steps = tf.cast(unpack(arrays["gaps"], p.index_width, p.entries), tf.int64) + 1
        positions = (tf.cumsum(steps) - 1)[:, None]
    if p.codebook_size:
        codes = unpack(arrays["codes"], p.value_bits, p.entries)
        if p.channels > 1:
            flat = tf.range(p.size, dtype=tf.int64) if positions is None else positions[:, 0]
            channel = tf.cast(flat % p.channels, tf.int32)
            codes = channel * (p.codebook_size // p.channels) + codes
        values = tf.gather(tf.cast(arrays["codebook"], dtype), codes)
    else:
        values = tf.cast(arrays["values"], dtype)
    if p.index == "none":
        return tf.reshape(values, shape)
    dense = tf.scatter_nd(positions, values, tf.constant([p.size], tf.int64))
    return tf.reshape(dense, shape)
