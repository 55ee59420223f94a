"""SCALE encoding of an attestation :class:`~phat_runtime.tee.policy.Policy` (v1).

Owns: the byte layout of a cluster policy inside CreateCluster / UpdatePolicy
(``docs/protocol.md`` "Policy"), with fixed code tables for platforms and TCB statuses so that
a reordering in ``tee/`` can never change the bytes. The encoding is canonical: sets are
written sorted without duplicates and the decoder refuses anything else, so one policy has
exactly one encoding. Must not: evaluate policies (``tee/policy.py`` does).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.errors import ProtocolError
from phat_runtime.tee.policy import Allowed, Policy, SgxRules, SimulatedRules, TdxRules

#: Wire codes of quote platforms. Append only: a code never changes meaning.
PLATFORM_CODES = {"sgx": 0, "tdx": 1, "simulated": 2}
#: Wire codes of Intel TCB statuses. Append only.
TCB_STATUS_CODES = {
    "UpToDate": 0, "SWHardeningNeeded": 1, "ConfigurationNeeded": 2,
    "ConfigurationAndSWHardeningNeeded": 3, "OutOfDate": 4, "OutOfDateConfigurationNeeded": 5,
    "Revoked": 6,
}
#: Most entries in any one list of a policy (measurements, advisories).
MAX_POLICY_LIST = 64
#: Longest advisory id (Intel's are like "INTEL-SA-00615").
MAX_ADVISORY_LEN = 64
U16_MAX = 0xFFFF

T = TypeVar("T", int, bytes)

_PLATFORM_NAMES = {code: name for name, code in PLATFORM_CODES.items()}
_TCB_NAMES = {code: name for name, code in TCB_STATUS_CODES.items()}


def encode_policy(w: Writer, policy: Policy) -> None:
    """Append the policy's canonical encoding to ``w``."""
    _codes(w, policy.platforms, PLATFORM_CODES, "platform")
    _codes(w, policy.tcb_statuses, TCB_STATUS_CODES, "TCB status")
    if policy.advisories is None:
        w.u8(0)
    else:
        w.u8(1)
        items = sorted(a.encode("utf-8") for a in policy.advisories)
        _check_list(len(items), "advisories")
        w.compact(len(items))
        for item in items:
            if len(item) > MAX_ADVISORY_LEN:
                raise ProtocolError(f"advisory id {item!r} is longer than {MAX_ADVISORY_LEN} bytes")
            w.blob(item)
    w.option(policy.max_collateral_age_secs, Writer.u64)
    w.boolean(policy.require_report_data).boolean(policy.allow_debug)
    for value in (policy.sgx.mr_enclave, policy.sgx.mr_signer):
        _allowed(w, value, 32)
    for number, what in ((policy.sgx.isv_prod_id, "isv_prod_id"), (policy.sgx.min_isv_svn, "min_isv_svn")):
        if number is not None and not 0 <= number <= U16_MAX:
            raise ProtocolError(f"sgx.{what} {number} does not fit in a u16")
        w.option(number, Writer.u16)
    tdx = policy.tdx
    for value in (tdx.mr_td, tdx.rtmr0, tdx.rtmr1, tdx.rtmr2, tdx.rtmr3):
        _allowed(w, value, 48)
    _allowed(w, policy.simulated.measurement, 32)


def decode_policy(r: Reader) -> Policy:
    """Read one policy; refuses unknown codes and non-canonical (unsorted, repeated) sets."""
    platforms = _read_codes(r, _PLATFORM_NAMES, "platform")
    statuses = _read_codes(r, _TCB_NAMES, "TCB status")
    advisories: frozenset[str] | None = None
    if _option_tag(r, "advisories"):
        raw = _read_sorted(r, _advisory, "advisories")
        advisories = frozenset(a.decode("utf-8") for a in raw)
    age = r.option(Reader.u64)
    require_report_data, allow_debug = r.boolean(), r.boolean()
    mr_enclave, mr_signer = _read_allowed(r, 32, "sgx.mr_enclave"), _read_allowed(r, 32, "sgx.mr_signer")
    isv_prod_id, min_isv_svn = r.option(Reader.u16), r.option(Reader.u16)
    tdx = [_read_allowed(r, 48, f"tdx.{name}") for name in ("mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3")]
    measurement = _read_allowed(r, 32, "simulated.measurement")
    return Policy(
        platforms=platforms, tcb_statuses=statuses, advisories=advisories,
        max_collateral_age_secs=age, require_report_data=require_report_data,
        allow_debug=allow_debug,
        sgx=SgxRules(mr_enclave, mr_signer, isv_prod_id, min_isv_svn),
        tdx=TdxRules(*tdx), simulated=SimulatedRules(measurement),
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_list(n: int, what: str) -> None:
    if n > MAX_POLICY_LIST:
        raise ProtocolError(f"policy {what}: {n} entries, the limit is {MAX_POLICY_LIST}")


def _codes(w: Writer, names: frozenset[str], table: dict[str, int], what: str) -> None:
    codes = []
    for name in names:
        if name not in table:
            raise ProtocolError(f"policy names unknown {what} {name!r}")
        codes.append(table[name])
    w.compact(len(codes))
    for code in sorted(codes):
        w.u8(code)


def _read_codes(r: Reader, names: dict[int, str], what: str) -> frozenset[str]:
    codes = _read_sorted(r, Reader.u8, f"{what} codes")
    for code in codes:
        if code not in names:
            raise ProtocolError(f"unknown {what} code {code} in policy")
    return frozenset(names[c] for c in codes)


def _allowed(w: Writer, value: Allowed, size: int) -> None:
    if value is None:
        w.u8(0)
        return
    items = sorted(value)
    _check_list(len(items), "measurement list")
    w.u8(1).compact(len(items))
    for item in items:
        if len(item) != size:
            raise ProtocolError(f"a policy measurement is {len(item)} bytes, expected {size}")
        w.raw(item)


def _read_allowed(r: Reader, size: int, what: str) -> Allowed:
    if not _option_tag(r, what):
        return None
    return frozenset(_read_sorted(r, lambda rr: rr.array(size), what))


def _advisory(r: Reader) -> bytes:
    n = r.compact()
    if n > MAX_ADVISORY_LEN:
        raise ProtocolError(f"advisory id of {n} bytes, the limit is {MAX_ADVISORY_LEN}")
    raw = r.take(n, "advisory id")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("advisory id is not UTF-8") from None
    return raw


def _read_sorted(r: Reader, item: Callable[[Reader], T], what: str) -> list[T]:
    n = r.compact()
    _check_list(n, what)
    items = [item(r) for _ in range(n)]
    if any(a >= b for a, b in itertools.pairwise(items)):
        raise ProtocolError(f"policy {what} are not sorted and unique (non-canonical encoding)")
    return items


def _option_tag(r: Reader, what: str) -> bool:
    tag = r.u8()
    if tag > 1:
        raise ProtocolError(f"invalid Option tag {tag:#x} for policy {what}")
    return tag == 1
