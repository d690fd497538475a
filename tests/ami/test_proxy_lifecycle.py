"""The proxy across Asterisk outages and configuration reloads (fake Asterisk, real sockets).

- A Login is refused while the link to Asterisk is down (Asterisk itself would be
  unreachable) and accepted again once it is back.
- A reload installs new accounts at once; a logged-in dialer whose account was
  removed, whose secret changed or whose address is no longer permitted is
  disconnected; any other keeps its session, with its account's new permissions.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.ami.session import UPSTREAM_DOWN_MESSAGE
from gateway.ami.settings import DEFAULT_ALLOWED_ACTIONS, ProxyAccount
from tests.ami.helpers import ACCOUNT, harness, proxy_settings, wait_state


async def test_login_refused_while_asterisk_is_down_and_accepted_when_back() -> None:
    async with harness(failed_login_limit=1) as h:  # one failure would lock the source
        await h.fake.stop()
        await wait_state(h.upstream, "down")
        d = await h.dialer(login=False)
        resp = await d.login()
        assert (resp.response, resp.action_id) == ("Error", "L")
        assert resp.get("Message") == UPSTREAM_DOWN_MESSAGE
        assert await d.closed()
        assert not h.proxy.failed_logins.blocked("127.0.0.1")  # not a failed login
        await h.fake.start()
        await wait_state(h.upstream, "up")
        again = await h.dialer(login=False)
        assert (await again.login()).get("Message") == "Authentication accepted"


async def test_a_wrong_secret_while_down_learns_nothing_about_asterisk() -> None:
    async with harness() as h:
        await h.fake.stop()
        await wait_state(h.upstream, "down")
        d = await h.dialer(login=False)
        resp = await d.login(secret="wrong")
        assert resp.get("Message") == "Authentication failed"


async def test_a_logged_in_dialer_is_told_and_disconnected_when_asterisk_goes() -> None:
    async with harness() as h:
        d = await h.dialer()
        await h.fake.stop()
        while (m := await d.recv()).event != "Shutdown":
            assert m.event == "FullyBooted"
        assert m.get("Shutdown") == "Uncleanly" and m.get("Restart") == "True"
        assert await d.closed()


async def test_reload_adds_an_account_and_tightens_permissions_in_place() -> None:
    async with harness() as h:
        d = await h.dialer()
        fewer = replace(ACCOUNT, allowed_actions=DEFAULT_ALLOWED_ACTIONS - {"getvar"})
        extra = ProxyAccount(name="second", secret="pw2", default_campaign="spring")
        closed = h.proxy.reconfigure(proxy_settings(accounts=(fewer, extra)))
        assert closed == []
        await d.send(Action="Getvar", Variable="X", ActionID="g")
        resp = await d.response()
        assert (resp.response, resp.get("Message")) == ("Error", "Permission denied")
        await d.send(Action="Status", ActionID="s")  # the session itself is untouched
        assert (await d.response()).get("Message") == "Status accepted"
        new = await h.dialer(login=False)
        assert (await new.login("second", "pw2")).response == "Success"
        assert h.fake.actions("Getvar") == []


async def test_reload_closes_sessions_of_removed_rotated_or_unpermitted_accounts() -> None:
    keep = ProxyAccount(name="keep", secret="k")
    gone = ProxyAccount(name="gone", secret="g")
    rotated = ProxyAccount(name="rotated", secret="old")
    moved = ProxyAccount(name="moved", secret="m")
    async with harness(accounts=(keep, gone, rotated, moved)) as h:
        dialers = {}
        for acc in (keep, gone, rotated, moved):
            dialers[acc.name] = d = await h.dialer(login=False)
            assert (await d.login(acc.name, acc.secret)).response == "Success"
        closed = h.proxy.reconfigure(proxy_settings(accounts=(
            keep,
            replace(rotated, secret="new"),
            replace(moved, permit=("192.0.2.0/24",)),
        )))
        assert sorted(closed) == ["gone", "moved", "rotated"]
        for name in ("gone", "rotated", "moved"):
            assert await dialers[name].closed(), name
        await dialers["keep"].send(Action="Ping", ActionID="p")
        assert (await dialers["keep"].response()).get("Ping") == "Pong"
        again = await h.dialer(login=False)
        assert (await again.login("rotated", "old")).get("Message") == "Authentication failed"
        fresh = await h.dialer(login=False)
        assert (await fresh.login("rotated", "new")).response == "Success"
