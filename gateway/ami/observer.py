"""What the AMI edges report (the integrator plugs Prometheus in). No numbers, ever."""

from __future__ import annotations

from typing import Protocol


class AmiObserver(Protocol):
    def link_state(self, link: str, state: str) -> None:
        """``link``: upstream | consumer; ``state``: connecting | up | down."""

    def abandon_ratio(self, campaign_id: str, ratio: float) -> None:
        """Rolling abandoned / answered of a campaign, after each counted answer."""

    def call_classified(self, campaign_id: str, outcome: str) -> None:
        """outcome: not_answered | bridged | abandoned | system_hangup."""

    def originate_screened(self, account: str, verdict: str, reason: str) -> None:
        """One Originate screened by the proxy (account names come from the config)."""

    def action_refused(self, account: str, action: str) -> None:
        """An action refused by the proxy's permission checks (never relayed)."""

    def dialer_sessions(self, count: int) -> None:
        """Open dialer sessions on the proxy."""

    def dialer_disconnected(self, reason: str) -> None:
        """reason: logoff | eof | slow_consumer | protocol_error | login_timeout |
        auth_failed | upstream_lost | too_many_sessions | shutdown | error."""

    def outcome_event(self, outcome: str, applied: bool) -> None:
        """A ``UserEvent: GatewayOutcome`` was received (applied to the store or not)."""


class NullObserver:
    def link_state(self, link: str, state: str) -> None:
        pass

    def abandon_ratio(self, campaign_id: str, ratio: float) -> None:
        pass

    def call_classified(self, campaign_id: str, outcome: str) -> None:
        pass

    def originate_screened(self, account: str, verdict: str, reason: str) -> None:
        pass

    def action_refused(self, account: str, action: str) -> None:
        pass

    def dialer_sessions(self, count: int) -> None:
        pass

    def dialer_disconnected(self, reason: str) -> None:
        pass

    def outcome_event(self, outcome: str, applied: bool) -> None:
        pass
