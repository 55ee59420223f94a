"""Attestation policy: which verified quotes a cluster accepts.

Owns: :class:`Policy` (platforms, measurements, TCB statuses, advisories, collateral age,
debug, report-data binding), loading it from JSON / TOML with strict keys, and
:func:`evaluate` — the policy checks over already-verified evidence. Must not: parse or verify
quotes (``verify.py``), read the clock (the verification time is a parameter).

Defaults are strict: SGX and TDX only (the simulated platform only if listed), TCB status
``UpToDate``, no advisories, collateral at most 30 days old, no debug enclaves / TDs, and the
report data must match the keys the worker claims. A measurement list that is absent is not
checked; one that is present must contain the quote's value.
"""

from __future__ import annotations

import hmac
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phat_runtime.errors import PolicyError
from phat_runtime.tee.platform import KIND_SGX, KIND_SIMULATED, KIND_TDX, QUOTE_KINDS
from phat_runtime.tee.verdict import Check, Evidence

#: Intel's TCB statuses (tcbInfo v3); a policy naming anything else is a typo.
TCB_STATUSES = (
    "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
)
#: Intel refreshes TCB info and QE identity every 30 days.
DEFAULT_MAX_COLLATERAL_AGE = 30 * 24 * 3600

SGX_FIELDS = {"mr_enclave": 32, "mr_signer": 32}
TDX_FIELDS = {"mr_td": 48, "rtmr0": 48, "rtmr1": 48, "rtmr2": 48, "rtmr3": 48}
SIMULATED_FIELDS = {"measurement": 32}
TOP_KEYS = {"platforms", "tcb_statuses", "advisories", "max_collateral_age_secs",
            "require_report_data", "allow_debug", KIND_SGX, KIND_TDX, KIND_SIMULATED}
SGX_KEYS = set(SGX_FIELDS) | {"isv_prod_id", "min_isv_svn"}

Allowed = frozenset[bytes] | None


@dataclass(frozen=True)
class SgxRules:
    mr_enclave: Allowed = None
    mr_signer: Allowed = None
    isv_prod_id: int | None = None
    min_isv_svn: int | None = None


@dataclass(frozen=True)
class TdxRules:
    mr_td: Allowed = None
    rtmr0: Allowed = None
    rtmr1: Allowed = None
    rtmr2: Allowed = None
    rtmr3: Allowed = None


@dataclass(frozen=True)
class SimulatedRules:
    measurement: Allowed = None


@dataclass(frozen=True)
class Policy:
    """A cluster's attestation policy (strict defaults; see the module docstring)."""

    platforms: frozenset[str] = frozenset({KIND_SGX, KIND_TDX})
    tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    #: Accepted advisory ids; ``None`` accepts any.
    advisories: frozenset[str] | None = frozenset()
    #: Maximum collateral age in seconds at verification time; ``None`` = no limit.
    max_collateral_age_secs: int | None = DEFAULT_MAX_COLLATERAL_AGE
    require_report_data: bool = True
    allow_debug: bool = False
    sgx: SgxRules = field(default_factory=SgxRules)
    tdx: TdxRules = field(default_factory=TdxRules)
    simulated: SimulatedRules = field(default_factory=SimulatedRules)

    @classmethod
    def permissive(cls) -> Policy:
        """What ``phat attest verify`` applies without ``--policy``: SGX/TDX with any
        non-revoked TCB status, any advisory and measurement; simulated and debug refused;
        report data not required."""
        return cls(tcb_statuses=frozenset(TCB_STATUSES) - {"Revoked"}, advisories=None,
                   max_collateral_age_secs=None, require_report_data=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Policy:
        _no_unknown(doc, TOP_KEYS, "policy")
        platforms = frozenset(_strings(doc.get("platforms", [KIND_SGX, KIND_TDX]), "platforms"))
        for name in platforms - set(QUOTE_KINDS):
            raise PolicyError(f"unknown platform {name!r}: policies name quote kinds "
                              f"({', '.join(QUOTE_KINDS)})")
        statuses = frozenset(_strings(doc.get("tcb_statuses", ["UpToDate"]), "tcb_statuses"))
        for status in statuses - set(TCB_STATUSES):
            raise PolicyError(f"unknown TCB status {status!r} (known: {', '.join(TCB_STATUSES)})")
        adv = doc.get("advisories", [])
        advisories = None if adv == "*" else frozenset(_strings(adv, "advisories"))
        age = doc.get("max_collateral_age_secs", DEFAULT_MAX_COLLATERAL_AGE)
        if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 0):
            raise PolicyError("max_collateral_age_secs must be a non-negative integer or null")
        sgx = _section(doc, KIND_SGX, SGX_KEYS)
        tdx = _section(doc, KIND_TDX, set(TDX_FIELDS))
        sim = _section(doc, KIND_SIMULATED, set(SIMULATED_FIELDS))
        return cls(
            platforms=platforms, tcb_statuses=statuses, advisories=advisories,
            max_collateral_age_secs=age,
            require_report_data=_bool(doc, "require_report_data", True),
            allow_debug=_bool(doc, "allow_debug", False),
            sgx=SgxRules(**{k: _hexes(sgx.get(k), k, n) for k, n in SGX_FIELDS.items()},
                         isv_prod_id=_opt_int(sgx, "isv_prod_id"),
                         min_isv_svn=_opt_int(sgx, "min_isv_svn")),
            tdx=TdxRules(**{k: _hexes(tdx.get(k), k, n) for k, n in TDX_FIELDS.items()}),
            simulated=SimulatedRules(_hexes(sim.get("measurement"), "measurement", 32)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, loadable by :meth:`from_dict` (unpinned fields are omitted)."""
        def hexes(rules: object, names: Iterable[str]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in names:
                value = getattr(rules, name)
                if value is not None:
                    out[name] = sorted(v.hex() for v in value)
            return out

        sgx = hexes(self.sgx, SGX_FIELDS)
        for name in ("isv_prod_id", "min_isv_svn"):
            if getattr(self.sgx, name) is not None:
                sgx[name] = getattr(self.sgx, name)
        return {
            "platforms": sorted(self.platforms),
            "tcb_statuses": sorted(self.tcb_statuses),
            "advisories": "*" if self.advisories is None else sorted(self.advisories),
            "max_collateral_age_secs": self.max_collateral_age_secs,
            "require_report_data": self.require_report_data,
            "allow_debug": self.allow_debug,
            KIND_SGX: sgx,
            KIND_TDX: hexes(self.tdx, TDX_FIELDS),
            KIND_SIMULATED: hexes(self.simulated, SIMULATED_FIELDS),
        }


def load_policy(path: Path) -> Policy:
    """A policy from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    try:
        doc = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(f"policy file {path} is not valid {path.suffix or 'JSON'}: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyError(f"policy file {path} must hold an object / table")
    return Policy.from_dict(doc)


# --- evaluation ------------------------------------------------------------------------------


def evaluate(policy: Policy, evidence: Evidence, *, at: int,
             expected_report_data: bytes | None) -> list[Check]:
    """The policy checks over evidence whose signature and collateral already verified."""
    kind = evidence.platform
    checks = [_platform_check(policy, kind)]
    if kind != KIND_SIMULATED:
        checks.append(Check("debug", policy.allow_debug or evidence.debug is False,
                            "debug mode: host can read enclave memory" if evidence.debug
                            else "production mode (not debug)"))
        checks.append(_tcb_check(policy, evidence))
        checks.append(_advisory_check(policy, evidence))
        checks.append(_age_check(policy, evidence, at))
    checks.extend(_measurement_checks(policy, evidence))
    checks.append(_report_data_check(policy, evidence, expected_report_data))
    return checks


def _platform_check(policy: Policy, kind: str) -> Check:
    if kind in policy.platforms:
        note = " — SIMULATED, NOT SECURE (development only)" if kind == KIND_SIMULATED else ""
        return Check("platform", True, f"{kind} allowed by policy{note}")
    if kind == KIND_SIMULATED:
        return Check("platform", False, "simulated platform refused: it is for development only "
                     "and this policy does not list 'simulated' in its platforms")
    return Check("platform", False, f"{kind} not in the policy's platforms "
                 f"({', '.join(sorted(policy.platforms)) or 'none'})")


def _tcb_check(policy: Policy, ev: Evidence) -> Check:
    ok = ev.tcb_status in policy.tcb_statuses
    return Check("tcb_status", ok, f"{ev.tcb_status} " + ("accepted" if ok else
                 f"not accepted (policy: {', '.join(sorted(policy.tcb_statuses))})"))


def _advisory_check(policy: Policy, ev: Evidence) -> Check:
    if policy.advisories is None:
        return Check("advisories", True, f"any accepted ({', '.join(ev.advisories) or 'none'})")
    bad = [a for a in ev.advisories if a not in policy.advisories]
    if bad:
        return Check("advisories", False, f"not accepted by policy: {', '.join(bad)}")
    return Check("advisories", True, f"all accepted ({', '.join(ev.advisories) or 'none'})")


def _age_check(policy: Policy, ev: Evidence, at: int) -> Check:
    limit = policy.max_collateral_age_secs
    if ev.collateral_issued_at is None:
        return Check("collateral_age", limit is None, "collateral issue dates unreadable")
    age = at - ev.collateral_issued_at
    text = f"collateral {age / 86400:.2f} days old"
    if limit is None:
        return Check("collateral_age", True, f"{text} (no limit)")
    ok = age <= limit
    return Check("collateral_age", ok, f"{text}, limit {limit / 86400:.2f} days"
                 + ("" if ok else " — too old"))


def _measurement_checks(policy: Policy, ev: Evidence) -> list[Check]:
    rules: object = {KIND_SGX: policy.sgx, KIND_TDX: policy.tdx}.get(ev.platform, policy.simulated)
    names = {KIND_SGX: SGX_FIELDS, KIND_TDX: TDX_FIELDS}.get(ev.platform, SIMULATED_FIELDS)
    checks = []
    for name in names:
        allowed = getattr(rules, name)
        if allowed is None:
            continue
        value = ev.measurements.get(name)
        ok = isinstance(value, bytes) and value in allowed
        shown = value.hex() if isinstance(value, bytes) else "absent"
        checks.append(Check(f"measurement.{name}", ok,
                            f"{shown} " + ("allowed" if ok else "not in the policy's allow-list")))
    if isinstance(rules, SgxRules):
        prod, svn = ev.measurements.get("isv_prod_id"), ev.measurements.get("isv_svn")
        if rules.isv_prod_id is not None:
            ok = isinstance(prod, int) and prod == rules.isv_prod_id
            checks.append(Check("measurement.isv_prod_id", ok,
                                f"isv_prod_id {prod!r}, policy requires {rules.isv_prod_id}"))
        if rules.min_isv_svn is not None:
            ok = isinstance(svn, int) and svn >= rules.min_isv_svn
            checks.append(Check("measurement.isv_svn", ok,
                                f"isv_svn {svn!r}, policy minimum {rules.min_isv_svn}"))
    if not checks:
        checks.append(Check("measurements", True,
                            "none pinned by this policy: any enclave / TD is accepted"))
    return checks


def _report_data_check(policy: Policy, ev: Evidence, expected: bytes | None) -> Check:
    if expected is None:
        if policy.require_report_data:
            return Check("report_data", False, "no claimed keys / expected report data given, "
                         "but the policy requires the quote to bind them")
        return Check("report_data", True, "not checked (no expectation given)")
    ok = ev.report_data is not None and hmac.compare_digest(ev.report_data, expected)
    return Check("report_data", ok, "matches the claimed keys" if ok else
                 f"quote binds {ev.report_data.hex() if ev.report_data else 'nothing'}, "
                 f"expected {expected.hex()}")


# --- parsing helpers -------------------------------------------------------------------------


def _no_unknown(doc: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise PolicyError(f"unknown key(s) in {where}: {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")


def _section(doc: Mapping[str, Any], name: str, known: set[str]) -> Mapping[str, Any]:
    section = doc.get(name, {})
    if not isinstance(section, Mapping):
        raise PolicyError(f"policy section {name!r} must be an object / table")
    _no_unknown(section, known, f"policy section {name!r}")
    return section


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{what} must be a list of strings")
    return value


def _bool(doc: Mapping[str, Any], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{key} must be true or false")
    return value


def _opt_int(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise PolicyError(f"{key} must be a non-negative integer")
    return value


def _hexes(value: object, what: str, size: int) -> Allowed:
    if value is None:
        return None
    out = set()
    for item in _strings(value, what):
        text = item[2:] if item.lower().startswith("0x") else item
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise PolicyError(f"{what}: {item!r} is not hex") from None
        if len(raw) != size:
            raise PolicyError(f"{what}: {item!r} is {len(raw)} bytes, expected {size}")
        out.add(raw)
    return frozenset(out)
