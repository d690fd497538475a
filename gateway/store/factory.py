"""Open a store from its URL (``[store] url`` in the configuration).

==============================================================  ===========================
URL                                                             store
==============================================================  ===========================
``memory://``                                                   in-process (single node)
``redis://[user:password@]host:port/db``                        plain Redis
``rediss://...``                                                plain Redis over TLS
``redis+sentinel://[user:password@]host:port[,host:port]/``     Sentinel: the master of
``service_name[/db]``                                           ``service_name``
``redis+cluster://[user:password@]host:port[,host:port]``       Redis Cluster
==============================================================  ===========================

``redis://`` and ``rediss://`` accept redis-py's query parameters (``?password=``,
``ssl_cert_reqs=``, ...). Sentinel and Cluster URLs accept ``password``, ``username``
(the data nodes' credentials), ``sentinel_password`` / ``sentinel_username`` (Sentinel
only) and ``ssl=true``. Passwords in the user-info part are URL-decoded.

No connection is made here: the first command connects. Timeouts apply to every
socket read/write (``socket_timeout_s``) and connect (``connect_timeout_s``); one retry
after a connection error (a reconnect after a Redis restart), with a short backoff.

Connections: at most ``max_connections`` per pool (per node for a Cluster). A burst
beyond it *waits* for a free connection instead of failing: the store admits at most
``max_connections`` operations at once (:class:`~gateway.store.redis_conn.RedisConn`),
and a plain-Redis pool is a ``BlockingConnectionPool`` that waits up to
``pool_timeout_s`` as well. On the hot path the wait is cut by the decision budget
(answer ``timeout``), never turned into ``store_unavailable``.
"""

from __future__ import annotations

from typing import Any

from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.redis_client import DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_TIMEOUT_S
from gateway.store.redis_client import make_redis_client as make_redis_client  # re-exported


def open_store(
    url: str,
    *,
    socket_timeout_s: float = 0.2,
    connect_timeout_s: float = 0.5,
    key_prefix: str = "dg",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
    **store_options: Any,
) -> Store:
    """The store for ``url``; ``store_options`` go to the store (e.g. import_batch_size)."""
    if url.partition("://")[0].lower() == "memory":
        return MemoryStore(**store_options)
    from gateway.store.redis import RedisStore  # redis-py only when a Redis URL is opened

    client, on_close = make_redis_client(
        url, socket_timeout_s=socket_timeout_s, connect_timeout_s=connect_timeout_s,
        max_connections=max_connections, pool_timeout_s=pool_timeout_s,
    )
    return RedisStore(client, key_prefix=key_prefix, on_close=on_close,
                      max_operations=max_connections, pool_timeout_s=pool_timeout_s,
                      **store_options)
