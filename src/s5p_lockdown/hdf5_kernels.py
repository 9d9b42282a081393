"""Numba functions of the fast HDF5 chunk reader (:mod:`s5p_lockdown.hdf5_chunks`), which calls
them through :func:`s5p_lockdown.aot.function` (compiled ahead of time when built, so that reading
needs no numba in the process; else numba's JIT)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def fletcher32(data):
    """HDF5's Fletcher-32 (H5_checksum_fletcher32) of a uint8 array: big-endian 16-bit words,
    sums folded every 360 words; arithmetic in int64, reduced modulo 2**32 as C's uint32."""
    n_words = data.size // 2
    sum1 = np.int64(0)
    sum2 = np.int64(0)
    i = 0
    while n_words > 0:
        block = min(n_words, 360)
        n_words -= block
        for _ in range(block):
            sum1 += (np.int64(data[i]) << 8) | np.int64(data[i + 1])
            sum2 += sum1
            i += 2
        sum1 &= 0xFFFFFFFF
        sum2 &= 0xFFFFFFFF
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if data.size % 2:
        sum1 += np.int64(data[i]) << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


@njit(cache=True)
def join_4_byte_items(src, n_items, first_item, dst_words):
    """:func:`s5p_lockdown.hdf5_chunks._unshuffle` for 4-byte items into uint32 words (little-endian byte order).
    The byte planes are taken as slices first: that lets LLVM vectorise the loop (10x)."""
    count = dst_words.size
    plane0 = src[first_item:first_item + count]
    plane1 = src[n_items + first_item:n_items + first_item + count]
    plane2 = src[2 * n_items + first_item:2 * n_items + first_item + count]
    plane3 = src[3 * n_items + first_item:3 * n_items + first_item + count]
    for i in range(count):
        dst_words[i] = (np.uint32(plane0[i]) | (np.uint32(plane1[i]) << 8)
                        | (np.uint32(plane2[i]) << 16) | (np.uint32(plane3[i]) << 24))


@njit(cache=True)
def join_items(src, itemsize, n_items, first_item, dst):
    """:func:`s5p_lockdown.hdf5_chunks._unshuffle` for any item size, one byte plane after the other."""
    count = dst.size // itemsize
    for b in range(itemsize):
        base = b * n_items + first_item
        for i in range(count):
            dst[i * itemsize + b] = src[base + i]
