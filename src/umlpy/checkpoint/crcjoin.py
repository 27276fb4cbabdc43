"""The CRC-32C of a whole from the CRC-32Cs of its pieces, without their
bytes (zlib's crc32_combine, for Castagnoli's polynomial).

Why: a migration's target writes a process's memory blob at offsets, as
the pre-copy's pages come, a page sent again in a later round overwriting
itself.  Digesting the finished blob read all of it again in the downtime
(256 MiB: 50 ms).  The target keeps a CRC per piece instead, summed again
when the piece is written, and joins them at the end: a join is
arithmetic on two 32-bit numbers.

CRC-32C is linear over GF(2): crc(A + B) = crc(A) * x^(8 len(B)) + crc(B)
mod the polynomial, its pre- and post-inversion cancelling out, so the
join multiplies crc(A) by a power of x, in the bit-reflected form the
CRC uses.
"""
from __future__ import annotations

POLY = 0x82F63B78           # Castagnoli's polynomial, reflected
_ONE = 1 << 31              # x^0, reflected


def _mult(a: int, b: int) -> int:
    """a * b mod POLY, both reflected."""
    m, p = _ONE, 0
    while a:
        if a & m:
            p ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ POLY if b & 1 else b >> 1
    return p


_X2N = [1 << 30]            # x^(2^k) mod POLY: x^1, x^2, x^4, ...
for _ in range(63):
    _X2N.append(_mult(_X2N[-1], _X2N[-1]))


def shift(nbytes: int) -> int:
    """x^(8 nbytes) mod POLY: what a CRC is multiplied by when nbytes
    follow it."""
    p, k, n = _ONE, 3, nbytes
    while n:
        if n & 1:
            p = _mult(_X2N[k], p)
        n >>= 1
        k += 1
    return p


def join(crc_a: int, crc_b: int, len_b: int, by: int | None = None) -> int:
    """CRC-32C of A + B from crc(A), crc(B) and B's length; `by`:
    shift(len_b) when the caller joins many pieces of one length."""
    return _mult(shift(len_b) if by is None else by, crc_a) ^ crc_b
