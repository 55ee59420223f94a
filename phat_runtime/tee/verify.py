"""Quote verification: cryptography first (dcap-qvl, or the simulated signature), then policy.

Owns: recognising a quote's kind, running dcap-qvl 0.7 fully offline over the collateral that
came with the quote, turning its report into :class:`Evidence`, and producing a
:class:`Verdict`. Must not: read the clock (``at`` is a parameter, so every worker reaches the
same verdict for the same chain data), fetch anything from the network, raise on bad evidence
(untrusted input yields a failing verdict; only misuse raises).

Never key anything on a hash of the raw quote: about 900 bytes of a DCAP quote (embedded PEM
chain formatting, padding) are not covered by any signature. Freshness and identity come
through the report data.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dcap_qvl

from phat_runtime.tee import simulated
from phat_runtime.tee.collateral import collateral_dates
from phat_runtime.tee.identity import worker_report_data
from phat_runtime.tee.platform import KIND_SGX, KIND_SIMULATED, KIND_TDX
from phat_runtime.tee.policy import Policy, evaluate
from phat_runtime.tee.verdict import Check, Evidence, Measurement, Verdict

#: SGX ATTRIBUTES.DEBUG (byte 0, bit 1) and TDX TDATTRIBUTES.DEBUG (byte 0, bit 0).
SGX_DEBUG_BIT = 0x02
TDX_DEBUG_BIT = 0x01
_TDX_NAMES = {"mr_td": "mr_td", "rt_mr0": "rtmr0", "rt_mr1": "rtmr1", "rt_mr2": "rtmr2",
              "rt_mr3": "rtmr3", "mr_seam": "mr_seam", "mr_config_id": "mr_config_id",
              "mr_owner": "mr_owner", "mr_owner_config": "mr_owner_config"}
#: What a dcap-qvl failure usually means, for people reading the verdict.
_HINTS = (
    ("No matching TCB level", "the platform's TCB matches no level in the collateral's TCB "
     "info: an outdated or unsupported platform, or collateral for another platform"),
    ("expired", "the collateral is not valid at the verification time (too old)"),
    ("Expired", "the collateral is not valid at the verification time (too old)"),
    ("in the future", "the collateral was issued after the verification time"),
)


def detect_kind(raw: bytes) -> str | None:
    """``sgx``, ``tdx`` or ``simulated`` from the quote bytes; ``None`` if unrecognisable."""
    if simulated.is_simulated_quote(raw):
        return KIND_SIMULATED
    try:
        parsed = dcap_qvl.parse_quote(raw)
    except ValueError:
        return None
    return KIND_TDX if parsed.is_tdx() else KIND_SGX


def verify_quote(raw: bytes, collateral: str | None, *, at: int, policy: Policy,
                 expected_report_data: bytes | None = None) -> Verdict:
    """Verify ``raw`` at unix time ``at`` against ``policy``.

    ``collateral`` is dcap-qvl's collateral JSON (ignored for simulated quotes);
    ``expected_report_data`` is what the quote must bind (see :func:`verify_worker_quote`).
    """
    kind = detect_kind(raw)
    if kind is None:
        return Verdict.from_evidence(None, [Check("quote", False, "not an SGX, TDX or simulated "
                                                  "quote (unparseable)")], at)
    if kind == KIND_SIMULATED:
        evidence, check = _simulated_evidence(raw)
    else:
        evidence, check = _dcap_evidence(raw, kind, collateral, at)
    if evidence is None or not check.ok:
        return Verdict.from_evidence(evidence, [check], at)
    checks = [check, *evaluate(policy, evidence, at=at, expected_report_data=expected_report_data)]
    return Verdict.from_evidence(evidence, checks, at)


def verify_worker_quote(raw: bytes, collateral: str | None, *, identity_pk: bytes,
                        ecdh_pk: bytes, at: int, policy: Policy) -> Verdict:
    """Verify a worker registration: the quote must bind exactly these two public keys."""
    return verify_quote(raw, collateral, at=at, policy=policy,
                        expected_report_data=worker_report_data(identity_pk, ecdh_pk))


# --- simulated -------------------------------------------------------------------------------


def _simulated_evidence(raw: bytes) -> tuple[Evidence | None, Check]:
    try:
        body = simulated.decode_quote(raw)
    except ValueError as exc:
        return None, Check("quote", False, f"malformed simulated quote: {exc}")
    ok = simulated.signature_valid(raw)
    evidence = Evidence(platform=KIND_SIMULATED, verified=ok,
                        measurements={"measurement": body.measurement},
                        report_data=body.report_data, tcb_status="Simulated",
                        quote_version=simulated.QUOTE_VERSION)
    detail = ("signed by the public development key — SIMULATED, NOT SECURE" if ok else
              "signature does not verify with the development platform key (forged or corrupted)")
    return evidence, Check("quote", ok, detail)


# --- DCAP (SGX, TDX) -------------------------------------------------------------------------


def _dcap_evidence(raw: bytes, kind: str, collateral: str | None,
                   at: int) -> tuple[Evidence, Check]:
    if collateral is None:
        return _parsed_evidence(raw, kind), Check(
            "quote", False, "no collateral given: DCAP quotes are verified offline against the "
            "collateral that travels with the registration (PCCS fetching is off)")
    try:
        report = dcap_qvl.verify(raw, dcap_qvl.QuoteCollateralV3.from_json(collateral), at)
    except Exception as exc:  # the foreign boundary: any dcap-qvl failure is a failed check
        return _parsed_evidence(raw, kind), Check("quote", False, _explain(str(exc)))
    doc = json.loads(report.to_json())
    issued: int | None = None
    expires: int | None = None
    try:
        dates = collateral_dates(collateral)
        issued, expires = dates.issued_at, dates.expires_at
    except ValueError:
        pass  # then collateral_age fails whenever the policy limits the age
    body = _report_body(doc.get("report", {}))
    measurements, debug = _measurements(kind, body)
    evidence = Evidence(
        platform=kind, verified=True, measurements=measurements,
        report_data=bytes.fromhex(body["report_data"]), tcb_status=str(report.status),
        advisories=tuple(report.advisory_ids), debug=debug,
        quote_version=dcap_qvl.parse_quote(raw).header.version,
        collateral_issued_at=issued, collateral_expires_at=expires,
    )
    return evidence, Check("quote", True, "dcap-qvl: quote signature, PCK certificate chain, "
                           "CRLs and collateral valid at the verification time")


def _report_body(report: dict[str, Any]) -> dict[str, Any]:
    """The one body of dcap-qvl's report JSON (``SgxEnclave`` / ``TD10`` / ``TD15``), with any
    nested base report flattened into it."""
    (body,) = report.values()
    flat: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def _measurements(kind: str, body: dict[str, Any]) -> tuple[dict[str, Measurement], bool]:
    if kind == KIND_SGX:
        attributes = bytes.fromhex(body["attributes"])
        return ({"mr_enclave": bytes.fromhex(body["mr_enclave"]),
                 "mr_signer": bytes.fromhex(body["mr_signer"]),
                 "isv_prod_id": int(body["isv_prod_id"]), "isv_svn": int(body["isv_svn"])},
                bool(attributes[0] & SGX_DEBUG_BIT))
    out: dict[str, Measurement] = {ours: bytes.fromhex(body[theirs])
                                   for theirs, ours in _TDX_NAMES.items() if theirs in body}
    return out, bool(bytes.fromhex(body["td_attributes"])[0] & TDX_DEBUG_BIT)


def _parsed_evidence(raw: bytes, kind: str) -> Evidence:
    """Unverified values, for showing what a failed quote claims (never for decisions)."""
    report = dcap_qvl.parse_quote(raw).report
    if kind == KIND_SGX:
        measurements: dict[str, Measurement] = {"mr_enclave": report.mr_enclave,
                                                "mr_signer": report.mr_signer}
    else:
        measurements = {ours: getattr(report, theirs) for theirs, ours in _TDX_NAMES.items()}
    return Evidence(platform=kind, verified=False, measurements=measurements,
                    report_data=report.report_data,
                    quote_version=dcap_qvl.parse_quote(raw).header.version)


def _explain(message: str) -> str:
    text = re.sub(r"\s+", " ", message).strip()
    for needle, hint in _HINTS:
        if needle in text:
            return f"dcap-qvl rejected the quote: {text} — {hint}"
    return f"dcap-qvl rejected the quote: {text}"
