"""Bounded batching of import rows (sync or async iterables)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

# Rows written per pipeline during an import (bounds memory and the size of one request).
DEFAULT_IMPORT_BATCH_SIZE = 1000


async def batches(rows: AsyncIterable[T] | Iterable[T], size: int) -> AsyncIterator[list[T]]:
    """Yield lists of at most ``size`` rows; yields to the event loop between batches."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    batch: list[T] = []
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
    else:
        for row in rows:
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
                # a long synchronous iterable must not starve the other tasks
                await asyncio.sleep(0)
    if batch:
        yield batch
