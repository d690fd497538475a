"""The batched facts read (``RedisStore.load_facts_many``, the scrub) in a few script calls.

Through a redis-py pipeline each of the five to seven commands a number needs costs about
10 µs of this process's CPU (packing, one reply parse with its own socket timeout, a
response callback), more than the decision itself. On plain Redis and Sentinel,
:func:`read_batch` sends instead one line per number (E.164, professional, attempts lower
bound, bucket, member) to ``READ_FACTS`` (redis_scripts.py), :data:`NUMBERS_PER_CALL`
numbers per call, all calls in one pipeline: the script builds the number's keys from the
parts :class:`~gateway.store.keys.KeySchema` gives, runs the same reads as the pipeline
(its hash, its attempts, its consent bucket fields, its opposition buckets) and answers
``0`` for a number with nothing stored (most leads) instead of five empty replies.

The pipeline holds, in order: the campaigns' counters, the script calls (in the numbers'
order), the list metadata last, which confirms the generations read before it (the same
order as the plain pipeline's). The facts are those of the plain pipeline
(tests/store/test_facts_many.py, tests/store/test_redis_batch_reads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.client import NEVER_DECODE

from gateway.store.base import FactsQuery
from gateway.store.redis_conn import RedisConn

#: Numbers read by one script call (about 125 commands: ≈ 0.15 ms of the server's time,
#: the longest a live call's read waits behind a scrub).
NUMBERS_PER_CALL = 25


@dataclass(slots=True)
class BatchRead:
    """What the plain pipeline's replies give, per number and per campaign slot."""

    numbers: list[dict[Any, Any]] = field(default_factory=list)  # the number's hash
    attempts: list[list[tuple[Any, float]]] = field(default_factory=list)  # (id, score)
    consents: list[Any] = field(default_factory=list)  # the HMGET reply of its chunks
    hits: list[dict[str, bool]] = field(default_factory=list)  # list name -> in a bucket
    counters: list[Any] = field(default_factory=list)  # 3 per campaign slot, in order
    lists: dict[Any, Any] = field(default_factory=dict)  # the list metadata hash


def usable(queries: Sequence[FactsQuery], places: Sequence[tuple[int, int] | None]) -> bool:
    """Whether a batch can go as script lines: every number is E.164 (its keys need no tag
    escaping) and no professional holds a separator of the lines."""
    if any(p is None for p in places):
        return False
    return not any("\t" in p or "\n" in p for p in {q.professional for q in queries})


async def read_batch(
    conn: RedisConn, queries: Sequence[FactsQuery], places: Sequence[tuple[int, int] | None],
    lows: Sequence[str], counters: Sequence[tuple[str, str, str, int]],
    consent_gen: int, chunks: int, gens: Sequence[tuple[str, str, str, str]],
    hot: bool = False,
) -> BatchRead:
    """The reads of ``queries`` (``usable``): ``lows`` each query's attempts lower bound;
    ``counters``: per campaign slot its campaign, the answered/abandoned lower bound, the
    pacing lower bound and the upper bound (now); ``gens``: per opposition generation its
    list name and bucket key parts (``bucket_key_parts``), in the order of the hits.
    ``hot``: live calls' reads, on the hot path's connection (a scrub's stay on redis-py's
    pool: a long batch never holds the live calls' replies behind it on one connection)."""
    keys = conn.keys
    nh, nt = keys.number_parts()
    ah, am = keys.attempts_parts()
    kh, kt = keys.consent_bucket_parts(consent_gen)
    head: list[Any] = [nh, nt, ah, am, kh, kt, chunks, len(gens)]
    for _, bucket_head, set_tail, bitmap_tail in gens:
        head += [bucket_head, set_tail, bitmap_tail]
    lines = [f"{q.e164}\t{q.professional}\t{low}\t{p[0]}\t{p[1]}"
             for q, low, p in zip(queries, lows, places, strict=True) if p is not None]
    calls = ["\n".join(lines[i:i + NUMBERS_PER_CALL])
             for i in range(0, len(lines), NUMBERS_PER_CALL)]
    script = conn.read_facts

    def fill(pipe: Any) -> None:  # reads only: safe to run again after a NOSCRIPT
        for campaign, low, paced_low, high in counters:
            # up to ``now``: a back-dated check does not count later calls
            pipe.zcount(keys.answered(campaign), low, high)
            pipe.zcount(keys.abandoned(campaign), low, high)
            pipe.zcount(keys.paced(campaign), paced_low, high)
        for text in calls:
            pipe.execute_command("EVALSHA", script.sha, 0, *head, text, **{NEVER_DECODE: []})
        pipe.hgetall(keys.lists())  # last: confirms the generations read before it

    results = await conn.execute_with_script(script, fill, hot=hot)
    for r in results:
        if isinstance(r, Exception):
            raise r
    out = BatchRead(counters=results[:3 * len(counters)], lists=results[-1])
    names = [name for name, _, _, _ in gens]
    for reply in results[3 * len(counters):-1]:
        for number in reply:
            if number == 0:  # nothing stored for it
                out.numbers.append({})
                out.attempts.append([])
                out.consents.append(None)
                out.hits.append({})
                continue
            h, a, c, found = number
            it = iter(h)
            out.numbers.append(dict(zip(it, it, strict=False)))
            it = iter(a)
            out.attempts.append([(m, float(s)) for m, s in zip(it, it, strict=False)])
            out.consents.append(c)
            hits: dict[str, bool] = {}
            for name, hit in zip(names, found, strict=True):
                hits[name] = hits.get(name, False) or bool(hit)
            out.hits.append(hits)
    return out
