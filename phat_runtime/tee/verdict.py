"""What verification found: the evidence a quote carries, each check, and the verdict.

Owns: :class:`Check`, :class:`Evidence`, :class:`Verdict` and their JSON form (bytes as hex
only here, at the edge). Must not: verify or decide anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A measurement value: a register / hash (bytes) or a number (SGX ISV product id and SVN).
Measurement = bytes | int


@dataclass(frozen=True)
class Check:
    """One named check and why it passed or failed."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Evidence:
    """What a quote (and its collateral) says. ``verified`` is False when the signature or
    collateral check failed: then the values are as parsed, untrusted, for display only."""

    platform: str
    verified: bool
    measurements: dict[str, Measurement] = field(default_factory=dict)
    report_data: bytes | None = None
    tcb_status: str | None = None
    advisories: tuple[str, ...] = ()
    debug: bool | None = None
    quote_version: int | None = None
    collateral_issued_at: int | None = None
    collateral_expires_at: int | None = None


@dataclass(frozen=True)
class Verdict:
    """The result of verifying one quote against a policy at a given time.

    ``ok`` is true only if at least one check ran and every check passed; ``failures`` lists
    the checks that did not, each saying why.
    """

    platform: str | None
    verified_at: int
    checks: tuple[Check, ...]
    signature_verified: bool = False
    measurements: dict[str, Measurement] = field(default_factory=dict)
    tcb_status: str | None = None
    advisories: tuple[str, ...] = ()
    report_data: bytes | None = None
    debug: bool | None = None
    quote_version: int | None = None
    collateral_issued_at: int | None = None
    collateral_expires_at: int | None = None

    @classmethod
    def from_evidence(cls, evidence: Evidence | None, checks: list[Check], at: int) -> Verdict:
        if evidence is None:
            return cls(platform=None, verified_at=at, checks=tuple(checks))
        return cls(
            platform=evidence.platform,
            verified_at=at,
            checks=tuple(checks),
            signature_verified=evidence.verified,
            measurements=dict(evidence.measurements),
            tcb_status=evidence.tcb_status,
            advisories=evidence.advisories,
            report_data=evidence.report_data,
            debug=evidence.debug,
            quote_version=evidence.quote_version,
            collateral_issued_at=evidence.collateral_issued_at,
            collateral_expires_at=evidence.collateral_expires_at,
        )

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: bytes as lowercase hex (no prefix), numbers as numbers."""
        return {
            "ok": self.ok,
            "platform": self.platform,
            "verified_at": self.verified_at,
            "signature_verified": self.signature_verified,
            "quote_version": self.quote_version,
            "measurements": {k: (v.hex() if isinstance(v, bytes) else v)
                             for k, v in self.measurements.items()},
            "tcb_status": self.tcb_status,
            "advisories": list(self.advisories),
            "debug": self.debug,
            "report_data": self.report_data.hex() if self.report_data is not None else None,
            "collateral": {
                "issued_at": self.collateral_issued_at,
                "expires_at": self.collateral_expires_at,
                "age_secs": (self.verified_at - self.collateral_issued_at
                             if self.collateral_issued_at is not None else None),
            },
            "checks": [c.to_dict() for c in self.checks],
            "failures": [c.to_dict() for c in self.failures],
        }
