"""phat_runtime — an off-chain confidential contract runtime for ink!/Phat contracts."""

__version__ = "0.1.0"
