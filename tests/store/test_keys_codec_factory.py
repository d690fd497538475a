"""Key schema (hash tags), codec round trips and store URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.cluster import key_slot

from gateway.core.model import ConsentRecord
from gateway.store import codec
from gateway.store.factory import open_store
from gateway.store.keys import (
    KeySchema,
    audit_heads_key,
    audit_stream_key,
    legacy_audit_stream_key,
    opposition_list,
)
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore

ids = st.text(min_size=1, max_size=20)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-720, 840)),
)


@given(e164=ids, professional=ids, campaign=ids)
def test_keys_read_together_share_a_cluster_slot(e164: str, professional: str,
                                                 campaign: str) -> None:
    k = KeySchema("dg")
    assert key_slot(k.number(e164).encode()) == key_slot(k.attempts(e164, professional).encode())
    campaign_slots = {key_slot(key.encode()) for key in
                      (k.answered(campaign), k.abandoned(campaign), k.paced(campaign))}
    assert len(campaign_slots) == 1


def test_invalid_prefix_and_sources_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeySchema("a{b}")
    with pytest.raises(ValueError, match="source"):
        opposition_list("has|pipe")


@given(collected=aware, expires=st.none() | aware, slot=st.none() | aware,
       cid=ids, tz=st.none() | st.sampled_from(["Europe/Paris", "America/Cayenne"]))
def test_consent_round_trips_as_utc(collected: datetime, expires: datetime | None,
                                    slot: datetime | None, cid: str, tz: str | None) -> None:
    record = ConsentRecord(id=cid, e164="+33612345678", professional="p", product_category="c",
                           collected_at=collected, expires_at=expires, channel="web",
                           proof_ref="r", timezone=tz, agreed_slot_start=slot)
    back = codec.decode_consent(record.e164, cid, codec.encode_consent(record))
    assert back == record
    assert back.collected_at.tzinfo is UTC


@given(aware)
def test_epoch_ms_round_trip_floors_to_the_millisecond(value: datetime) -> None:
    back = codec.from_ms(codec.to_ms(value))
    assert timedelta(0) <= value - back < timedelta(milliseconds=1)


@pytest.mark.parametrize("url, client_type", [
    ("redis://127.0.0.1:6390/2", Redis),
    ("rediss://127.0.0.1:6390/0", Redis),
    ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", RedisCluster),
    ("redis+sentinel://:s3cret@127.0.0.1:26379,127.0.0.1:26380/mymaster/3", Redis),
])
async def test_urls_open_the_right_client(url: str, client_type: type) -> None:
    store = open_store(url, key_prefix="x")
    assert isinstance(store, RedisStore)
    client: Any = store.conn.client
    assert isinstance(client, client_type)
    if client_type is RedisCluster:
        assert [(n.host, n.port) for n in client.startup_nodes] == [
            ("127.0.0.1", 7000), ("127.0.0.1", 7001)]
    await store.close()


def test_memory_and_bad_urls() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    with pytest.raises(ValueError, match="scheme"):
        open_store("mongodb://x")
    with pytest.raises(ValueError, match="service_name"):
        open_store("redis+sentinel://127.0.0.1:26379")


@pytest.mark.parametrize(("configured", "prefix", "cluster", "stream", "legacy"), [
    (None, "dg", False, "dg:audit", None),  # the default prefix: the key it always had
    (None, "dg", True, "{dg:audit}", None),  # Cluster: wrapped so the heads share its slot
    (None, "gw1", False, "gw1:audit", "dg:audit"),  # follows the prefix; earlier: dg:audit
    (None, "gw1", True, "{gw1:audit}", "{dg:audit}"),
    ("dg:audit", "gw1", False, "dg:audit", None),  # configured: it wins, no fallback
    ("{gw1}:audit", "gw1", True, "{gw1}:audit", None),  # an operator's own tag is kept
])
def test_the_audit_stream_follows_the_prefix_and_shares_a_slot_with_its_heads(
        configured: str | None, prefix: str, cluster: bool, stream: str,
        legacy: str | None) -> None:
    assert audit_stream_key(configured, prefix=prefix, cluster=cluster) == stream
    assert legacy_audit_stream_key(configured, prefix=prefix, cluster=cluster) == legacy
    assert audit_heads_key(stream) == stream + ":heads"
    if cluster:
        assert key_slot(stream.encode()) == key_slot(audit_heads_key(stream).encode())
