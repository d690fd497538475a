"""A consent instant that leaves the calendar once in UTC is a reported error, not a crash.

Incident: ``0001-01-01T00:00:00+01:00`` is a valid ISO-8601 instant, but in UTC it falls
in year 0, which ``datetime`` cannot hold. A consent file with it in ``collected_at`` and
no ``consent_id`` crashed the import with ``OverflowError`` (the derived id converts the
collection to UTC), in the generic reader and in the chunked pass alike; with an id given
the record was stored, and reading it back would overflow the same way. Now every instant
column refuses such a value with its line and column, whichever reader reads the file.
"""

from __future__ import annotations

import pytest

from gateway.importer import ImportFileError, ImportKind
from gateway.importer.run import SPECS, validate

HEADER = b"number,professional,product_category,collected_at,expires_at,channel,consent_id," \
         b"withdrawn_at\n"
GOOD = b"+33612345670,acme,energy,2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web,crm-0,\n"


@pytest.mark.parametrize(("row", "column"), [
    (b"+33612345678,acme,energy,0001-01-01T00:00:00+01:00,2028-01-01T10:00:00Z,web,,",
     "collected_at"),
    (b"+33612345678,acme,energy,0001-01-01T00:00:00+01:00,2028-01-01T10:00:00Z,web,c-1,",
     "collected_at"),
    (b"+33612345678,acme,energy,2025-01-01T10:00:00Z,9999-12-31T23:59:59-01:00,web,c-1,",
     "expires_at"),
    (b"+33612345678,acme,energy,2025-01-01T10:00:00Z,2028-01-01T10:00:00Z,web,c-1,"
     b"9999-12-31T23:30:00-00:45", "withdrawn_at"),
])
@pytest.mark.parametrize("fast", [True, False])
def test_an_instant_out_of_range_in_utc_is_refused(row: bytes, column: str,
                                                   fast: bool) -> None:
    data = HEADER + GOOD * 3 + row + b"\n"
    with pytest.raises(ImportFileError) as refused:
        validate(SPECS[ImportKind.CONSENTS], data, fast=fast)
    assert f"line 5, column {column}" in str(refused.value)
    assert "out of range in UTC" in str(refused.value)


def test_the_edge_years_within_range_are_still_taken() -> None:
    """Year 1 and year 9999 themselves are fine when they stay so in UTC."""
    data = HEADER + GOOD + (b"+33612345678,acme,energy,0001-01-01T10:00:00-01:00,"
                            b"9999-12-31T10:00:00+01:00,web,,\n")
    fast = validate(SPECS[ImportKind.CONSENTS], data, fast=True)
    generic = validate(SPECS[ImportKind.CONSENTS], data, fast=False)
    assert fast == generic and fast.rows == 2
