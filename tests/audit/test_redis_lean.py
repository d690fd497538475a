"""The audit sink's group commits on the lean RESP connection (gateway.store.resp), under
faults: a refused XADD is never reported written."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from gateway.audit import AuditUnavailable, open_audit_trail
from tests.audit.helpers import make_record
from tests.audit.test_redis import settings
from tests.fixtures.redis_servers import RedisServerFactory


def _lines(admin: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(fields.get(b"r") or fields["r"]) for _, fields in admin.xrange(key)]


async def test_an_append_the_server_refuses_is_not_reported_written(
        redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory.start()
    trail = open_audit_trail(settings(server.url, "dg:audit", write_timeout_s=1.0))
    assert trail._redis is not None and trail._redis._lean is not None  # on the lean path
    await trail.append(make_record(0))
    with server.admin() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # every write refused: -OOM
        with pytest.raises(AuditUnavailable, match="OOM"):
            await trail.append(make_record(1))
        assert [r["seq"] for r in _lines(admin, "dg:audit")] == [0]
        admin.config_set("maxmemory", "0")
    # the next record chains after the last one written, nothing skipped
    await trail.append(make_record(2))
    report = await trail.verify()
    await trail.close()
    assert report.ok, report.problems
    with server.admin() as admin:
        lines = _lines(admin, "dg:audit")
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert "d-gw-a-1" not in [r["id"] for r in lines if not r.get("supersedes")]
