"""Compact sets of E.164 numbers: the shape of opposition lists in both stores.

A number ``+<digits>`` is the integer ``n`` of its digits (E.164 never starts with 0, so
the integer is exact). It lives in the *bucket* ``n // BUCKET_SPAN`` as the *member*
``n % BUCKET_SPAN`` (0..9999: a 16-bit integer). The memory store keeps one sorted
``array('H')`` per bucket (about 2 bytes per number, no Python object per number); the
Redis store keeps one key per bucket, an intset while it holds at most the intset limit,
a 1,250-byte bitmap above (see docs/store.md).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

#: Numbers per bucket (a member is the number modulo this: fits 16 bits).
BUCKET_SPAN = 10_000
#: Bytes of a bucket stored as a bitmap in Redis (one bit per member).
BITMAP_BYTES = (BUCKET_SPAN + 7) // 8
#: Redis ``set-max-intset-entries`` default; a bucket holding more becomes a bitmap.
DEFAULT_INTSET_ENTRIES = 512
#: A builder squeezes duplicates out of its buckets after this many additions, so its
#: memory follows the distinct numbers (about 2 bytes each), not the rows of the file.
SQUEEZE_EVERY = 4_000_000
#: ``CompactNumbers.buckets()`` reports progress every this many numbers.
PROGRESS_EVERY_NUMBERS = 65_536


def number_int(e164: str) -> int:
    """The integer of an E.164 string (``+33612345678`` -> 33612345678)."""
    digits = e164[1:] if e164.startswith("+") else ""
    if not digits.isdigit() or not digits.isascii() or digits[0] == "0" or len(digits) > 15:
        raise ValueError("not an E.164 number")
    return int(digits)


def split(n: int) -> tuple[int, int]:
    """(bucket, member) of a number's integer."""
    return divmod(n, BUCKET_SPAN)


def bitmap_threshold(intset_entries: int) -> int:
    """Members above which a bucket is cheaper (and still compact) as a bitmap."""
    return max(1, min(intset_entries, BITMAP_BYTES // 2))


class CompactBuilder:
    """Collects numbers (duplicates allowed) into per-bucket ``array('H')``; ``build()``.

    Memory: about 2 bytes per distinct number plus one array per bucket; duplicates are
    squeezed out every :data:`SQUEEZE_EVERY` additions.
    """

    __slots__ = ("_added", "_buckets")

    def __init__(self) -> None:
        self._buckets: dict[int, array[int]] = {}
        self._added = 0

    def add_many(self, ints: Iterable[int]) -> None:
        buckets = self._buckets
        get = buckets.get
        added = 0
        span = BUCKET_SPAN
        for n in ints:
            bucket, member = divmod(n, span)
            arr = get(bucket)
            if arr is None:
                arr = buckets[bucket] = array("H")
            arr.append(member)
            added += 1
        self._added += added
        if self._added >= SQUEEZE_EVERY:
            self._squeeze()

    def _squeeze(self) -> None:
        for bucket, arr in self._buckets.items():
            self._buckets[bucket] = array("H", sorted(set(arr)))
        self._added = 0

    def build(self) -> CompactNumbers:
        """The set (the builder is emptied)."""
        out = CompactNumbers()
        for bucket, arr in self._buckets.items():
            members = array("H", sorted(set(arr)))
            out._buckets[bucket] = members
            out._count += len(members)
        self._buckets = {}
        self._added = 0
        return out


class CompactNumbers:
    """An immutable-after-build set of numbers: sorted ``array('H')`` per bucket."""

    __slots__ = ("_buckets", "_count", "_watcher")

    def __init__(self) -> None:
        self._buckets: dict[int, array[int]] = {}
        self._count = 0
        self._watcher: Callable[[int], None] | None = None

    @classmethod
    def build(cls, ints: Iterable[int]) -> CompactNumbers:
        builder = CompactBuilder()
        builder.add_many(ints)
        return builder.build()

    def watch(self, callback: Callable[[int], None] | None) -> None:
        """``callback(numbers so far)`` while :meth:`buckets` is iterated (progress)."""
        self._watcher = callback

    def buckets(self) -> Iterator[tuple[int, array[int]]]:
        """(bucket, sorted distinct members) in bucket order; do not modify the arrays."""
        done = reported = 0
        watcher = self._watcher
        for bucket in sorted(self._buckets):
            members = self._buckets[bucket]
            yield bucket, members
            done += len(members)
            if watcher is not None and done - reported >= PROGRESS_EVERY_NUMBERS:
                watcher(done)
                reported = done
        if watcher is not None:
            watcher(done)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int):
            return False
        bucket, member = divmod(n, BUCKET_SPAN)
        arr = self._buckets.get(bucket)
        if arr is None:
            return False
        i = bisect_left(arr, member)
        return i < len(arr) and arr[i] == member

    def __iter__(self) -> Iterator[int]:
        for bucket in sorted(self._buckets):
            base = bucket * BUCKET_SPAN
            for member in self._buckets[bucket]:
                yield base + member

    def discard(self, n: int) -> bool:
        bucket, member = divmod(n, BUCKET_SPAN)
        arr = self._buckets.get(bucket)
        if arr is None:
            return False
        i = bisect_left(arr, member)
        if i >= len(arr) or arr[i] != member:
            return False
        del arr[i]
        if not arr:
            del self._buckets[bucket]
        self._count -= 1
        return True

    def union(self, other: CompactNumbers) -> CompactNumbers:
        return CompactNumbers.build(_chain(self, other))

    def nbytes(self) -> int:
        """Bytes of the members (array payloads), for benchmarks."""
        return sum(a.itemsize * len(a) for a in self._buckets.values())


def _chain(*sets: CompactNumbers) -> Iterator[int]:
    for s in sets:
        yield from s
