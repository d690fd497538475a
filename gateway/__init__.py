"""dialer-gateway: a real-time compliance gateway for outbound call centres on Asterisk."""

__version__ = "0.1.0"
