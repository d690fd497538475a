"""Attack: the dialer names the campaign, and picks a shadow or consent-exempt one.

``Variable: CAMPAIGN=<a shadow campaign>`` (the example configuration ships one) or a
consent-exempt (``press``) campaign got ALLOW for any number. Campaigns now belong to
accounts: an Originate naming a campaign outside the account's ``campaigns`` is refused
before screening, and shadow/exempt campaigns need an explicit grant. Against a real
Asterisk 22 (proof: the carrier context is never entered).
"""

from __future__ import annotations

import pytest

from tests.fixtures.ami_attack import AttackRig, next_number

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("variables", [
    ["CAMPAIGN=ami-shadow"],
    ["CAMPAIGN=ami-press"],
    ["__CAMPAIGN=ami-shadow"],
    ["campaign=ami-shadow"],
    ["CAMPAIGN=ami-promo", "CAMPAIGN=ami-shadow"],  # Asterisk applies the last one
    ["CAMPAIGN=ami-promo,CAMPAIGN=ami-press"],
    ["CAMPAIGN=unknown-campaign"],
])
async def test_campaign_outside_the_account_is_refused(attack_rig: AttackRig,
                                                       variables: list[str]) -> None:
    blocked = next_number()
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{blocked}@carrier", "Context": "agents",
        "Exten": "s", "Priority": "1", "Async": "true", "Timeout": "10000",
        "Variable": variables,
    }, as_list=False)
    assert resp.get("Response") == "Error", resp
    assert "campaign" in str(resp.get("Message")), resp
    await attack_rig.settle()
    assert attack_rig.user_events("DgCarrier", blocked) == []


async def test_own_campaign_is_screened(attack_rig: AttackRig) -> None:
    blocked = next_number()
    resp = await attack_rig.dialer.action({
        "Action": "Originate", "Channel": f"Local/9{blocked}@carrier", "Context": "agents",
        "Exten": "s", "Priority": "1", "Async": "true", "Variable": "CAMPAIGN=ami-promo",
    }, as_list=False)
    assert resp.get("Message") == "Originate blocked by dialer-gateway: no_consent"
