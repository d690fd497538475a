"""Attack: the callee in Channel is screened, but ``Application: Dial`` dials another number.

The answered channel would run ``Dial(PJSIP/<second number>@trunk)``: a second callee,
never screened. The proxy refuses such an Originate; dialling an agent is still fine.
"""

from __future__ import annotations

from tests.ami.helpers import harness


async def test_application_dial_to_a_number_is_refused() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Originate", Channel="PJSIP/0612345678@trunk", Application="Dial",
                     Data="PJSIP/0699999999@trunk,30", ActionID="x")
        resp = await d.response()
        assert (resp.response, resp.action_id) == ("Error", "x")
        assert h.fake.actions("Originate") == []


async def test_application_dial_to_an_agent_is_relayed() -> None:
    async with harness() as h:
        d = await h.dialer()
        await d.send(Action="Originate", Channel="PJSIP/0612345678@trunk", Application="Dial",
                     Data="PJSIP/agent-17&SIP/agent-18,30", Async="true", ActionID="y")
        assert (await d.response()).response == "Success"
        assert len(h.fake.actions("Originate")) == 1
