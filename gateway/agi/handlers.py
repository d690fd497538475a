"""FastAGI routes. ``screen``: screen one outbound attempt and set the GW_* variables.

Dialplan: ``AGI(agi://127.0.0.1:4573/screen,${NUMBER},${CAMPAIGN}[,${CALLER_ID}[,
${GW_DECISION_ID}]])``, or the same values in the script's query string:
``agi://.../screen?number=..&campaign=..&caller_id=..&prescreen=..`` (``+`` is a plus sign
there, not a space; the AGI arguments win when both are given).

The fourth value is the AMI proxy's decision id when the proxy already screened this
call (belt and braces, docs/ami.md): a claim only, honoured when the store holds the
proxy's one-shot token for that id and this number (then the attempt is not counted
twice); anything else is screened as a new attempt.

The caller id presented to the callee is the campaign's (from its configuration) unless a
third argument / ``caller_id`` gives it: ``agi_callerid`` is the *channel's* caller id, which
for an outbound dialer channel is usually not what the callee will see, so it is not used.

The answer is one command, ``EXEC MSet "GW_VERDICT=..,GW_REASON=..,GW_E164=..,
GW_RETRY_AFTER=..,GW_DECISION_ID=.."``: one line instead of five ``SET VARIABLE``. Its reply
is not awaited once the Asterisk at that address has confirmed one (AgiSession.finish,
docs/agi.md): Asterisk runs the command when it reads it, then reads our end of stream and
the AGI ends.
"""

from __future__ import annotations

import logging
from typing import Literal

import structlog

from gateway.agi.protocol import AgiReply, UnsafeArgument, encode_mset, encode_set_variable
from gateway.agi.server import AgiSession
from gateway.core.model import Attempt, Reason, Verdict
from gateway.service_api import Screener, ScreenResult, screen_or_none

log = structlog.get_logger(__name__)
_debug_enabled = logging.getLogger(__name__).isEnabledFor  # cached by logging, per level

DEFAULT_SCREEN_DEADLINE_S = 1.5  # belt and braces over the Screener's own decision budget
MAX_ARG_CHARS = 64  # number, campaign and caller id beyond this are cut (then judged invalid)
# peer addresses remembered as having confirmed an answer (their answers are not awaited
# then); past this many, a new address's answers keep waiting for their reply
MAX_CONFIRMED_PEERS = 4096

VariableMode = Literal["mset", "set_variable"]


def gateway_variables(
    verdict: Verdict,
    reason: Reason,
    e164: str | None,
    retry_after_s: int | None,
    decision_id: str,
) -> tuple[tuple[str, str], ...]:
    """The five GW_* variables, in contract order; empty string for unknown values."""
    return (
        ("GW_VERDICT", verdict.value),
        ("GW_REASON", reason.value),
        ("GW_E164", e164 or ""),
        ("GW_RETRY_AFTER", "" if retry_after_s is None else str(max(0, int(retry_after_s)))),
        ("GW_DECISION_ID", decision_id),
    )


def result_variables(result: ScreenResult) -> tuple[tuple[str, str], ...]:
    return gateway_variables(
        result.verdict, result.reason, result.e164, result.retry_after_s, result.decision_id
    )


FAIL_CLOSED_VARIABLES = gateway_variables(Verdict.BLOCK, Reason.STORE_UNAVAILABLE, None, None, "")
TIMEOUT_VARIABLES = gateway_variables(Verdict.BLOCK, Reason.TIMEOUT, None, None, "")


def attempt_from_session(session: AgiSession) -> Attempt:
    """Build the Attempt from ``agi_arg_1..3`` or the script's query string."""
    env = session.env
    args = env.args
    query = env.query

    def pick(index: int, key: str) -> str:
        value = args[index] if len(args) > index and args[index].strip() else query.get(key, "")
        return value.strip()[:MAX_ARG_CHARS]

    caller_id = pick(2, "caller_id") or None
    return Attempt(
        number=pick(0, "number"),
        campaign_id=pick(1, "campaign"),
        caller_id=caller_id,
        source="agi",
        prescreen_id=pick(3, "prescreen") or None,
    )


def audit_context(session: AgiSession) -> dict[str, str]:
    """Edge facts for the audit record (never the numbers: those are in the Attempt)."""
    env = session.env
    context = {"edge": "agi", "peer": session.peer}
    for key, name in (
        ("agi_channel", "channel"),
        ("agi_uniqueid", "uniqueid"),
        ("agi_context", "dialplan_context"),
        ("agi_accountcode", "accountcode"),
    ):
        value = env.get(key)
        if value is not None:
            context[name] = value[:128]
    return context


class ScreenHandler:
    """The ``screen`` route."""

    def __init__(
        self,
        screener: Screener,
        *,
        deadline_s: float = DEFAULT_SCREEN_DEADLINE_S,
        variable_mode: VariableMode = "mset",
    ) -> None:
        self._screener = screener
        self.deadline_s = deadline_s  # a reload may move it (with the decision budget)
        self._mode = variable_mode
        # the answer's last command is awaited until the Asterisk host at that address
        # has once confirmed one (a 200 result=0/1): from then on, for that host, it is
        # sent and the session ended, reply unread. Per peer address: one host's replies
        # say nothing of another's (nor can a client that is not Asterisk vouch for it)
        self._confirmed: set[str] = set()

    async def __call__(self, session: AgiSession) -> None:
        attempt = attempt_from_session(session)
        variables = await self._screen(session, attempt)
        await self._set_variables(session, variables)

    async def overloaded(self, session: AgiSession) -> None:
        """The server is past ``agi.max_sessions``: ``BLOCK timeout`` at once, unscreened.

        Nothing was decided, so nothing is audited or reserved; the session is counted
        (``dialer_gateway_agi_sessions_total{outcome="overloaded"}``).
        """
        await self._set_variables(session, TIMEOUT_VARIABLES)

    async def _screen(self, session: AgiSession, attempt: Attempt) -> tuple[tuple[str, str], ...]:
        try:
            result = await screen_or_none(self._screener, attempt,
                                        context=audit_context(session),
                                        deadline_s=self.deadline_s)
        except Exception:  # the Screener never raises by contract; a bug here fails closed
            log.exception(
                "agi.screen_failed",
                session=session.id,
                campaign=attempt.campaign_id,
                number=attempt.number,
            )
            return FAIL_CLOSED_VARIABLES
        if result is None:
            log.error(
                "agi.screen_timeout",
                session=session.id,
                campaign=attempt.campaign_id,
                deadline_s=self.deadline_s,
            )
            return TIMEOUT_VARIABLES
        try:
            return result_variables(result)
        except (AttributeError, TypeError, ValueError):
            log.exception("agi.screen_result_invalid", session=session.id)
            return FAIL_CLOSED_VARIABLES

    async def _set_variables(
        self, session: AgiSession, variables: tuple[tuple[str, str], ...]
    ) -> None:
        try:
            lines = self._encode(variables)
        except UnsafeArgument:
            # values come from the engine's vocabulary and never hold a comma or a quote;
            # if one ever does, answer BLOCK rather than write something Asterisk misreads
            log.error("agi.unsafe_result", session=session.id)
            lines = self._encode(FAIL_CLOSED_VARIABLES)
        *first, last = lines
        for line in first:  # set_variable: each of the first four is answered, then the next
            if not self._took(session, await session.command(line)):
                return
        if session.source in self._confirmed:
            reply = await session.finish(last)  # None: the session ends, reply not awaited
        else:
            reply = await session.command(last)
        if reply is not None:
            if not self._took(session, reply):
                return
            if len(self._confirmed) < MAX_CONFIRMED_PEERS:  # beyond: answers keep waiting
                self._confirmed.add(session.source)
        if _debug_enabled(logging.DEBUG):  # a dropped structlog call still costs its chain
            log.debug("agi.screen_answered", session=session.id, verdict=variables[0][1],
                      reply_awaited=reply is not None)

    @staticmethod
    def _took(session: AgiSession, reply: AgiReply) -> bool:
        """Whether Asterisk ran the command (EXEC: -2 means MSet is missing, -1 a failure
        in the application); logs ``agi.set_variables_failed`` when it did not."""
        if reply.result in ("0", "1"):
            return True
        log.error(
            "agi.set_variables_failed",
            session=session.id,
            result=reply.result,
            text=reply.text[:128],
        )
        return False

    def _encode(self, variables: tuple[tuple[str, str], ...]) -> list[bytes]:
        if self._mode == "mset":
            return [encode_mset(variables)]
        return [encode_set_variable(name, value) for name, value in variables]
