"""Policy files: strict defaults, JSON and TOML, typos refused, and the checks it makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phat_runtime.errors import PolicyError
from phat_runtime.tee import Evidence, Policy, load_policy
from phat_runtime.tee.policy import DEFAULT_MAX_COLLATERAL_AGE, evaluate

TOML = """
platforms = ["sgx", "simulated"]
tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
advisories = ["INTEL-SA-00615"]
max_collateral_age_secs = 604800
allow_debug = false

[sgx]
mr_enclave = ["0x33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"]
isv_prod_id = 3
min_isv_svn = 2

[tdx]
rtmr3 = ["000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"]
"""


def test_defaults_are_strict() -> None:
    p = Policy()
    assert p.platforms == {"sgx", "tdx"}
    assert p.tcb_statuses == {"UpToDate"}
    assert p.advisories == frozenset()
    assert p.max_collateral_age_secs == DEFAULT_MAX_COLLATERAL_AGE == 30 * 86400
    assert p.require_report_data and not p.allow_debug
    assert Policy.from_dict({}) == p
    assert "Revoked" not in Policy.permissive().tcb_statuses
    assert "simulated" not in Policy.permissive().platforms


def test_toml_and_json_load_the_same_policy(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(TOML)
    p = load_policy(tmp_path / "p.toml")
    assert p.platforms == {"sgx", "simulated"}
    assert p.sgx.mr_enclave == {bytes.fromhex(
        "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb")}
    assert p.sgx.isv_prod_id == 3 and p.sgx.min_isv_svn == 2
    assert p.tdx.rtmr3 == {bytes(48)} and p.tdx.mr_td is None
    (tmp_path / "p.json").write_text(json.dumps(p.to_dict()))
    assert load_policy(tmp_path / "p.json") == p


def test_json_null_means_no_age_limit_and_star_any_advisory() -> None:
    p = Policy.from_dict(json.loads('{"max_collateral_age_secs": null, "advisories": "*"}'))
    assert p.max_collateral_age_secs is None and p.advisories is None


@pytest.mark.parametrize("doc, message", [
    ({"platform": ["sgx"]}, "unknown key"),
    ({"platforms": ["gramine-sgx"]}, "quote kinds"),
    ({"tcb_statuses": ["UptoDate"]}, "unknown TCB status"),
    ({"sgx": {"mr_enclave": ["00" * 31]}}, "31 bytes"),
    ({"sgx": {"mr_enclave": ["zz" * 32]}}, "not hex"),
    ({"sgx": {"mrenclave": ["00" * 32]}}, "unknown key"),
    ({"tdx": {"mr_td": ["00" * 32]}}, "expected 48"),
    ({"tdx": {"mr_td": "00" * 48}}, "list of strings"),
    ({"max_collateral_age_secs": -1}, "non-negative"),
    ({"require_report_data": "yes"}, "true or false"),
    ({"sgx": {"isv_prod_id": True}}, "non-negative integer"),
])
def test_invalid_policies_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_dict(doc)


def test_unreadable_policy_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.json")
    (tmp_path / "bad.toml").write_text("platforms = [")
    with pytest.raises(PolicyError, match="not valid"):
        load_policy(tmp_path / "bad.toml")


def _evidence(**kw: object) -> Evidence:
    base: dict[str, object] = dict(platform="sgx", verified=True, tcb_status="UpToDate",
                                   report_data=bytes(64), debug=False,
                                   collateral_issued_at=1_000_000,
                                   measurements={"mr_enclave": b"\1" * 32, "isv_svn": 4})
    base.update(kw)
    return Evidence(**base)  # type: ignore[arg-type]


def _failures(policy: Policy, ev: Evidence, at: int = 1_000_000) -> list[str]:
    return [c.name for c in evaluate(policy, ev, at=at, expected_report_data=bytes(64))
            if not c.ok]


def test_debug_enclaves_are_refused_unless_allowed() -> None:
    assert _failures(Policy(), _evidence(debug=True)) == ["debug"]
    assert _failures(Policy(allow_debug=True), _evidence(debug=True)) == []


def test_advisory_and_status_checks() -> None:
    ev = _evidence(tcb_status="SWHardeningNeeded", advisories=("INTEL-SA-1", "INTEL-SA-2"))
    assert _failures(Policy(), ev) == ["tcb_status", "advisories"]
    relaxed = Policy.from_dict({"tcb_statuses": ["SWHardeningNeeded"],
                                "advisories": ["INTEL-SA-1"]})
    checks = evaluate(relaxed, ev, at=1_000_000, expected_report_data=bytes(64))
    (adv,) = [c for c in checks if c.name == "advisories"]
    assert not adv.ok and "INTEL-SA-2" in adv.detail and "INTEL-SA-1" not in adv.detail


def test_isv_svn_minimum() -> None:
    assert _failures(Policy.from_dict({"sgx": {"min_isv_svn": 4}}), _evidence()) == []
    assert _failures(Policy.from_dict({"sgx": {"min_isv_svn": 5}}), _evidence()) == [
        "measurement.isv_svn"]


def test_collateral_age_boundary() -> None:
    p = Policy(max_collateral_age_secs=100)
    assert _failures(p, _evidence(), at=1_000_100) == []
    assert _failures(p, _evidence(), at=1_000_101) == ["collateral_age"]
    assert _failures(p, _evidence(collateral_issued_at=None)) == ["collateral_age"]
