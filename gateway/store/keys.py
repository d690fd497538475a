"""The whole Redis key schema of dialer-gateway, in one place.

Every key starts with ``<prefix>:`` (``dg`` by default; one prefix per deployment or
per test). Keys that must be read or changed together carry the same Redis Cluster
hash tag ``{...}``, so that scripts touching them are single-slot and the hot-path
pipeline needs at most one node per tag.

=================================  ======  ==================================================
key                                type    content
=================================  ======  ==================================================
``dg:n:{<e164>}``                  HASH    every list fact about one number (fields below)
``dg:a:{<e164>}:<professional>``   ZSET    attempts of one professional to the number:
                                           member = attempt id, score = epoch ms;
                                           trimmed to the frequency window on each reserve
``dg:p:{<e164>}:<decision id>``    STRING  one-shot prescreen token of the AMI proxy's decision
                                           (``prescreen.py``); PX = its TTL
``dg:c:{<campaign>}:answered``     ZSET    live-answered calls: member = call id, score = ms
``dg:c:{<campaign>}:abandoned``    ZSET    the abandoned ones among them (same members)
``dg:c:{<campaign>}:paced``        ZSET    attempts of the campaign (pacing, last 60 s)
``dg:lists``                       HASH    field = list name, value = list metadata (JSON)
``dg:audit``                       STREAM  the audit trail, unless ``audit.stream_key`` is
                                           set (see the end of this module)
``dg:audit:heads``                 HASH    its chain heads: field = instance, ``seq:hash``
``dg:k:{k<bucket>}:<gen>``         HASH    consents of the numbers of one bucket (number //
                                           10000) in generation ``gen`` (the version of the
                                           last replace import): field = the number mod
                                           10000, value = its packed consent records
                                           (``consent_pack.py``), split over ``<mod>.1``,
                                           ``<mod>.2``... past ``hash-max-listpack-value``
``dg:kx:<gen>``                    SET     index of a generation: its bucket numbers
``dg:kg``                          SET     the consent generations that have an index
``dg:kd``                          HASH    dictionary of the consent records: field
                                           ``<kind>:<term>`` -> small integer id; ``#`` the
                                           last id handed out
=================================  ======  ==================================================

Fields of the per-number hash ``dg:n:{<e164>}``:

- ``v|<list>|<version>|<id>`` -> a versioned list entry. ``<list>`` is ``contracts``
  (``consents`` and ``opposition:<source>`` in stores written before their compact
  layouts: still read); ``<id>`` is the consent id, the contract ref,
  or empty for an opposition entry. The value is compact JSON (see ``codec.py``).
  An entry is visible only when its version is *live* for its list (see ``ListMeta``).
- ``s|<since epoch ms>|<professional>`` -> a suppression (JSON).
- ``w|<professional>`` (``w|*`` for every professional) -> consent withdrawals: a comma
  separated list of UTC ISO instants (at most ``WITHDRAWALS_KEPT``, newest kept).

The list metadata (``dg:lists`` field values) is JSON::

    {"version": committed version, "base": first live version (the last replace),
     "seq": last version handed out, "imported_at": epoch ms, "size": live entries,
     "hash": content hash, "pending": [[version, started ms], ...],
     "aborted": [version, ...]}

A version ``v`` is live when ``base <= v <= version`` and ``v`` is neither pending nor
aborted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "dg"

LIST_CONSENTS = "consents"
LIST_CONTRACTS = "contracts"
OPPOSITION_PREFIX = "opposition:"

ENTRY = "v"  # versioned list entries
SUPPRESSION = "s"
WITHDRAWAL = "w"
ALL_PROFESSIONALS = "*"

# Consent withdrawals kept per (number, professional); keeping the newest is safe: a
# consent collected before an older, dropped withdrawal is still before a newer one.
WITHDRAWALS_KEPT = 16

_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def opposition_list(source: str) -> str:
    """The list name of an opposition source (``opposition:bloctel``)."""
    if not _SOURCE_RE.match(source):
        raise ValueError(
            f"invalid opposition source {source!r}: lower-case letters, digits, '_', '-', '.'"
        )
    return OPPOSITION_PREFIX + source


def tag(value: str) -> str:
    """Escape a value for use inside a hash tag (braces would end or start a tag)."""
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def entry_field(list_name: str, version: int, entry_id: str = "") -> str:
    return f"{ENTRY}|{list_name}|{version}|{entry_id}"


def entry_prefix(list_name: str) -> str:
    return f"{ENTRY}|{list_name}|"


def suppression_field(professional: str, since_ms: int) -> str:
    return f"{SUPPRESSION}|{since_ms}|{professional}"


def withdrawal_field(professional: str | None) -> str:
    return f"{WITHDRAWAL}|{ALL_PROFESSIONALS if professional is None else professional}"


@dataclass(frozen=True, slots=True)
class KeySchema:
    """Builds every key of one deployment (``prefix``)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "{}* ?[]"):
            raise ValueError(f"invalid key prefix {self.prefix!r}")

    def number(self, e164: str) -> str:
        return f"{self.prefix}:n:{{{tag(e164)}}}"

    def number_parts(self) -> tuple[str, str]:
        """``number(e164)`` is ``head + e164 + tail`` for an E.164 number (which needs no
        tag escaping): what the batched read's script builds on the server."""
        return f"{self.prefix}:n:{{", "}"

    def number_pattern(self) -> str:
        """SCAN pattern matching every per-number hash (and nothing else)."""
        return f"{self.prefix}:n:{{*"

    def attempts(self, e164: str, professional: str) -> str:
        return f"{self.prefix}:a:{{{tag(e164)}}}:{professional}"

    def attempts_parts(self) -> tuple[str, str]:
        """``attempts(e164, professional)`` is ``head + e164 + middle + professional`` for an
        E.164 number."""
        return f"{self.prefix}:a:{{", "}:"

    def prescreen(self, e164: str, decision_id: str) -> str:
        """The proxy's one-shot token: same hash tag as the number's attempts."""
        return f"{self.prefix}:p:{{{tag(e164)}}}:{tag(decision_id)}"

    def answered(self, campaign_id: str) -> str:
        return f"{self.prefix}:c:{{{tag(campaign_id)}}}:answered"

    def abandoned(self, campaign_id: str) -> str:
        return f"{self.prefix}:c:{{{tag(campaign_id)}}}:abandoned"

    def paced(self, campaign_id: str) -> str:
        return f"{self.prefix}:c:{{{tag(campaign_id)}}}:paced"

    def lists(self) -> str:
        return f"{self.prefix}:lists"

    def audit_stream(self) -> str:
        """The audit trail's stream when ``audit.stream_key`` is not set."""
        return f"{self.prefix}:audit"

    def consent_bucket(self, bucket: int, gen: int) -> str:
        """Consents of bucket ``number // 10000`` in generation ``gen`` (the tag spreads
        buckets over slots)."""
        head, tail = self.consent_bucket_parts(gen)
        return f"{head}{bucket}{tail}"

    def consent_bucket_parts(self, gen: int) -> tuple[str, str]:
        """``consent_bucket(bucket, gen)`` is ``head + str(bucket) + tail``."""
        return f"{self.prefix}:k:{{k", f"}}:{gen}"

    def consent_index(self, gen: int) -> str:
        return f"{self.prefix}:kx:{gen}"

    def consent_generations(self) -> str:
        return f"{self.prefix}:kg"

    def consent_dictionary(self) -> str:
        return f"{self.prefix}:kd"


# --- the audit trail's Redis stream (gateway.audit.redis_sink) -------------------------

# The stream every deployment used by default before the default followed the key prefix.
LEGACY_AUDIT_STREAM_KEY = "dg:audit"


def audit_heads_key(stream_key: str) -> str:
    """The chain heads of a stream (a Hash): keeps the stream key's hash tag, if any."""
    return stream_key + ":heads"


def audit_stream_key(
    configured: str | None, *, prefix: str = DEFAULT_PREFIX, cluster: bool = False
) -> str:
    """The stream key: ``audit.stream_key`` when configured, else ``<prefix>:audit``.

    On a Cluster the stream and its heads key must share a slot, so a key without a hash
    tag is wrapped in one (``dg:audit`` -> ``{dg:audit}``).
    """
    key = configured if configured is not None else KeySchema(prefix).audit_stream()
    if cluster and "{" not in key:
        return "{" + key + "}"
    return key


def legacy_audit_stream_key(configured: str | None, *, prefix: str, cluster: bool) -> str | None:
    """The key an earlier version wrote this deployment's trail to, when it differs from
    :func:`audit_stream_key` (``None``: the same key, or ``audit.stream_key`` is set).

    The wiring keeps writing to it while it exists and the new key does not, so an
    existing deployment's stream keeps being found (docs/audit.md).
    """
    if configured is not None:
        return None
    legacy = audit_stream_key(LEGACY_AUDIT_STREAM_KEY, cluster=cluster)
    return None if legacy == audit_stream_key(None, prefix=prefix, cluster=cluster) else legacy
