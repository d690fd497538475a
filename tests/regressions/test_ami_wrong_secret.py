"""Attack: password guessing against the proxy's dialer accounts."""



from __future__ import annotations

from dataclasses import replace

from gateway.ami.auth import md5_key
from tests.ami.helpers import ACCOUNT, harness


async def test_wrong_secret_is_refused_and_the_connection_closed() -> None:
    async with harness() as h:
        d = await h.dialer(login=False)
        resp = await d.login(secret="guess")
        assert (resp.response, resp.get("Message")) == ("Error", "Authentication failed")
        assert await d.closed()


async def test_md5_login_without_a_challenge_fails() -> None:
    async with harness() as h:
        d = await h.dialer(login=False)
        await d.send(Action="Login", AuthType="MD5", Username="vici",
                     Key=md5_key("", "dialer-pw"))
        assert (await d.response()).get("Message") == "Authentication failed"


async def test_repeated_failures_lock_the_source_out_even_with_the_right_secret() -> None:
    async with harness(failed_login_limit=3) as h:
        for _ in range(3):
            d = await h.dialer(login=False)
            assert (await d.login(secret="guess")).response == "Error"
        d = await h.dialer(login=False)
        assert (await d.login()).response == "Error"  # right secret, source locked out


async def test_source_outside_the_permitted_networks_is_refused() -> None:
    account = replace(ACCOUNT, permit=("10.0.0.0/8",))
    async with harness(accounts=(account,)) as h:
        d = await h.dialer(login=False)
        assert (await d.login()).get("Message") == "Authentication failed"


async def test_unknown_user_is_refused() -> None:
    async with harness() as h:
        d = await h.dialer(login=False)
        assert (await d.login(username="admin")).response == "Error"


def test_secrets_never_in_repr() -> None:
    assert "dialer-pw" not in repr(ACCOUNT)
