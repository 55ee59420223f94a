"""DCAP collateral: the JSON that travels with a registration, and the dates inside it.

Owns: reading collateral text (dcap-qvl's ``QuoteCollateralV3`` JSON), the issue / next-update
dates of its parts, and the (absent) PCCS fetch. Must not: verify signatures (dcap-qvl does;
the dates read here are trusted only once dcap-qvl has accepted the same text).

Collateral *age* is measured from the oldest issue date among the parts Intel refreshes
monthly — TCB info, QE identity and the PCK CRL. The root CA CRL is left out: Intel reissues
it about once a year, so it is normally months old and says nothing about freshness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from phat_runtime.errors import AttestationError

COLLATERAL_FIELDS = (
    "pck_crl_issuer_chain", "root_ca_crl", "pck_crl", "tcb_info_issuer_chain", "tcb_info",
    "tcb_info_signature", "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature",
)


@dataclass(frozen=True)
class CollateralDates:
    """Unix times (seconds) of each dated part of the collateral."""

    tcb_info_issued: int
    tcb_info_next_update: int
    qe_identity_issued: int
    qe_identity_next_update: int
    pck_crl_issued: int
    pck_crl_next_update: int
    root_ca_crl_issued: int
    root_ca_crl_next_update: int

    @property
    def issued_at(self) -> int:
        """Oldest issue date among the monthly-refreshed parts (see module docstring)."""
        return min(self.tcb_info_issued, self.qe_identity_issued, self.pck_crl_issued)

    @property
    def expires_at(self) -> int:
        """Earliest next-update date: after it, the collateral no longer verifies."""
        return min(self.tcb_info_next_update, self.qe_identity_next_update,
                   self.pck_crl_next_update, self.root_ca_crl_next_update)


def _iso(value: object, what: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _crl(value: object, what: str) -> tuple[int, int]:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a hex string")
    crl = x509.load_der_x509_crl(bytes.fromhex(value))
    if crl.next_update_utc is None:
        raise ValueError(f"{what} has no nextUpdate")
    return int(crl.last_update_utc.timestamp()), int(crl.next_update_utc.timestamp())


def collateral_dates(text: str) -> CollateralDates:
    """Dates of a collateral JSON document; ``ValueError`` if any part is unreadable."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("collateral JSON is not an object")
    missing = [f for f in COLLATERAL_FIELDS if f not in doc]
    if missing:
        raise ValueError(f"collateral lacks {', '.join(missing)}")
    tcb = json.loads(doc["tcb_info"])
    qe = json.loads(doc["qe_identity"])
    pck_issued, pck_next = _crl(doc["pck_crl"], "pck_crl")
    root_issued, root_next = _crl(doc["root_ca_crl"], "root_ca_crl")
    return CollateralDates(
        tcb_info_issued=_iso(tcb.get("issueDate"), "tcb_info.issueDate"),
        tcb_info_next_update=_iso(tcb.get("nextUpdate"), "tcb_info.nextUpdate"),
        qe_identity_issued=_iso(qe.get("issueDate"), "qe_identity.issueDate"),
        qe_identity_next_update=_iso(qe.get("nextUpdate"), "qe_identity.nextUpdate"),
        pck_crl_issued=pck_issued,
        pck_crl_next_update=pck_next,
        root_ca_crl_issued=root_issued,
        root_ca_crl_next_update=root_next,
    )


def read_collateral(path: Path) -> str:
    """Collateral text from a file (UTF-8 JSON)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AttestationError(f"cannot read collateral file {path}: {exc}") from exc


def fetch_collateral(raw_quote: bytes, pccs_url: str) -> str:
    """Fetching collateral from a PCCS is deliberately not implemented.

    Verification must be reproducible by every worker from chain data alone, so collateral
    travels with the registration. (dcap-qvl's ``get_collateral`` could back this later, as
    an explicit opt-in for tooling.)
    """
    raise AttestationError(
        f"fetching collateral from a PCCS ({pccs_url}) is not implemented: verification is "
        "offline, pass the collateral JSON that travels with the registration"
    )
