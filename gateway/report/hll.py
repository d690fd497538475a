"""A small HyperLogLog: distinct numbers in bounded memory (4 KiB, ~1.6 % error)."""

from __future__ import annotations

import hashlib
import math

PRECISION = 12  # 2**12 registers of one byte each


class HyperLogLog:
    def __init__(self, precision: int = PRECISION) -> None:
        self.p = precision
        self.m = 1 << precision
        self.registers = bytearray(self.m)

    def add(self, item: str) -> None:
        # surrogatepass: a lone surrogate (a trail altered by hand) is counted, not a crash
        data = item.encode("utf-8", "surrogatepass")
        x = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
        index = x >> (64 - self.p)
        rest = (x << self.p) & ((1 << 64) - 1)
        rank = (64 - self.p) + 1 if rest == 0 else (64 - rest.bit_length()) + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def count(self) -> int:
        m = self.m
        alpha = 0.7213 / (1 + 1.079 / m)
        estimate = alpha * m * m / sum(2.0 ** -r for r in self.registers)
        zeros = self.registers.count(0)
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)  # small range: linear counting
        return round(estimate)
