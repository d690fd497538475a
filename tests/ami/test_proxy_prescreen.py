"""Only an allowed Originate leaves a prescreen token: it is the one action whose
channel carries the proxy's ``GW_DECISION_ID`` to the carrier context's FastAGI screen."""

from __future__ import annotations

from tests.ami.helpers import harness


async def test_originate_asks_for_a_token_a_redirect_into_a_dial_target_does_not() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Originate", Channel="Local/90612345678@default", Exten="8365",
                     Context="default", Priority="1", ActionID="o1")
        assert (await d.response()).response == "Success"
        (sent,) = h.fake.actions("Originate")
        assert "GW_DECISION_ID=dec-1" in sent.get_all("Variable")
        await d.send(Action="Redirect", Channel="PJSIP/a-1", Context="default",
                     Exten="90612345679", Priority="1", ActionID="r1")
        assert (await d.response()).response == "Success"
        (originate, _), (redirect, _) = h.screener.attempts
        assert (originate.number, originate.issue_prescreen) == ("0612345678", True)
        assert (redirect.number, redirect.issue_prescreen) == ("0612345679", False)
        assert originate.prescreen_id is None and redirect.prescreen_id is None
