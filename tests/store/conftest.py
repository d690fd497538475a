"""The ``store`` fixture: the contract suite runs once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.store.base import Store
from gateway.store.factory import open_store

# generous socket timeouts: the contract suite checks behaviour, not speed
TEST_SOCKET_TIMEOUT_S = 2.0

BACKENDS = ["memory", "redis", pytest.param("cluster", marks=pytest.mark.cluster)]
SMOKE_BACKENDS = [*BACKENDS, "sentinel"]


def _url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "memory":
        return "memory://"
    fixture = {"redis": "redis_url", "cluster": "redis_cluster_url",
               "sentinel": "redis_sentinel_url"}[backend]
    url: str = request.getfixturevalue(fixture)
    return url


async def _open(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Store]:
    store = open_store(_url(request, request.param), key_prefix=key_prefix,
                       socket_timeout_s=TEST_SOCKET_TIMEOUT_S,
                       connect_timeout_s=TEST_SOCKET_TIMEOUT_S, import_batch_size=100)
    yield store
    await store.close()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Store]:
    async for s in _open(request, key_prefix):
        yield s


@pytest.fixture(params=SMOKE_BACKENDS)
async def smoke_store(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Store]:
    async for s in _open(request, key_prefix):
        yield s
