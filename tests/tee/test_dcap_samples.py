"""Real SGX and TDX quotes through dcap-qvl and the policy: they pass at their pinned times and
fail for every reason they should, each with the failing check named."""

from __future__ import annotations

import time

import pytest

from phat_runtime.tee import Policy, Verdict, verify_quote, verify_worker_quote
from phat_runtime.tee.identity import WorkerIdentity

from .samples import (
    SGX_ADVISORIES,
    SGX_MR_ENCLAVE,
    SGX_MR_ENCLAVE_OFFSET,
    SGX_MR_SIGNER,
    SGX_REPORT_DATA,
    SGX_REPORT_DATA_OFFSET,
    SGX_STATUS,
    TDX_MEASUREMENTS,
    TDX_MR_TD_OFFSET,
    TDX_REPORT_DATA,
    TDX_REPORT_DATA_OFFSET,
    Sample,
    sgx_policy,
    tdx_policy,
)

DAY = 86400


def _names(verdict: Verdict) -> list[str]:
    return [c.name for c in verdict.failures]


def _pinned(sample: Sample) -> tuple[Policy, bytes]:
    if sample.name == "sgx_quote":
        return sgx_policy(), SGX_REPORT_DATA
    return tdx_policy(), TDX_REPORT_DATA


# --- passing ---------------------------------------------------------------------------------


def test_sgx_sample_verifies_at_its_pinned_time(sgx_sample: Sample) -> None:
    v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at,
                     policy=sgx_policy(), expected_report_data=SGX_REPORT_DATA)
    assert v.failures == []
    assert v.ok and v.signature_verified
    assert v.platform == "sgx" and v.quote_version == 3
    assert v.tcb_status == SGX_STATUS
    assert v.advisories == SGX_ADVISORIES
    assert v.measurements["mr_enclave"].hex() == SGX_MR_ENCLAVE
    assert v.measurements["mr_signer"].hex() == SGX_MR_SIGNER
    assert v.measurements["isv_prod_id"] == 0 and v.measurements["isv_svn"] == 0
    assert v.report_data == SGX_REPORT_DATA
    assert v.debug is False
    names = {c.name for c in v.checks}
    assert {"quote", "platform", "debug", "tcb_status", "advisories", "collateral_age",
            "measurement.mr_enclave", "measurement.mr_signer", "measurement.isv_prod_id",
            "measurement.isv_svn", "report_data"} <= names


def test_tdx_sample_verifies_at_its_pinned_time(tdx_sample: Sample) -> None:
    v = verify_quote(tdx_sample.raw, tdx_sample.collateral, at=tdx_sample.at,
                     policy=tdx_policy(), expected_report_data=TDX_REPORT_DATA)
    assert v.failures == []
    assert v.ok and v.platform == "tdx" and v.quote_version == 4
    assert v.tcb_status == "UpToDate" and v.advisories == ()
    for name, value in TDX_MEASUREMENTS.items():
        assert v.measurements[name].hex() == value
        assert f"measurement.{name}" in {c.name for c in v.checks}


def test_default_policy_is_strict(sgx_sample: Sample, tdx_sample: Sample) -> None:
    # SGX sample: needs configuration/SW hardening and has advisories -> refused by default.
    v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at, policy=Policy(),
                     expected_report_data=SGX_REPORT_DATA)
    assert _names(v) == ["tcb_status", "advisories"]
    # TDX sample: UpToDate, no advisories, collateral 30 days minus 1 s old -> accepted.
    v = verify_quote(tdx_sample.raw, tdx_sample.collateral, at=tdx_sample.at, policy=Policy(),
                     expected_report_data=TDX_REPORT_DATA)
    assert v.ok, v.failures
    # ... but not without the report data the worker claims.
    v = verify_quote(tdx_sample.raw, tdx_sample.collateral, at=tdx_sample.at, policy=Policy())
    assert _names(v) == ["report_data"]


# --- failing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [2, DAY, 60 * DAY])
def test_samples_fail_after_the_collateral_window(dcap_sample: Sample, delta: int) -> None:
    policy, data = _pinned(dcap_sample)
    v = verify_quote(dcap_sample.raw, dcap_sample.collateral, at=dcap_sample.at + delta,
                     policy=policy, expected_report_data=data)
    assert not v.ok and not v.signature_verified
    assert _names(v) == ["quote"]
    assert "expired" in v.failures[0].detail.lower()


def test_samples_fail_before_the_collateral_was_issued(dcap_sample: Sample) -> None:
    policy, data = _pinned(dcap_sample)
    v = verify_quote(dcap_sample.raw, dcap_sample.collateral, at=dcap_sample.at - 40 * DAY,
                     policy=policy, expected_report_data=data)
    assert _names(v) == ["quote"]
    assert "future" in v.failures[0].detail


@pytest.mark.parametrize("field", ["measurement", "report_data"])
def test_a_flipped_signed_byte_fails(dcap_sample: Sample, field: str) -> None:
    policy, data = _pinned(dcap_sample)
    sgx = dcap_sample.name == "sgx_quote"
    if field == "measurement":
        offset = SGX_MR_ENCLAVE_OFFSET if sgx else TDX_MR_TD_OFFSET
        expected = SGX_MR_ENCLAVE if sgx else TDX_MEASUREMENTS["mr_td"]
        # The offset really is the measurement (so the flipped byte is inside the signed body).
        assert dcap_sample.raw[offset : offset + 16].hex() == expected[:32]
    else:
        offset = SGX_REPORT_DATA_OFFSET if sgx else TDX_REPORT_DATA_OFFSET
        assert dcap_sample.raw[offset : offset + 64] == data
    forged = bytearray(dcap_sample.raw)
    forged[offset + 3] ^= 0x01
    v = verify_quote(bytes(forged), dcap_sample.collateral, at=dcap_sample.at, policy=policy,
                     expected_report_data=data)
    assert not v.ok and _names(v) == ["quote"]
    assert "dcap-qvl rejected" in v.failures[0].detail
    # The original still verifies: the failure is the flipped byte, nothing else.
    assert verify_quote(dcap_sample.raw, dcap_sample.collateral, at=dcap_sample.at,
                        policy=policy, expected_report_data=data).ok


def test_wrong_report_data_expectation_fails(dcap_sample: Sample) -> None:
    policy, data = _pinned(dcap_sample)
    wrong = bytes([data[0] ^ 1]) + data[1:]
    v = verify_quote(dcap_sample.raw, dcap_sample.collateral, at=dcap_sample.at, policy=policy,
                     expected_report_data=wrong)
    assert _names(v) == ["report_data"]
    assert wrong.hex() in v.failures[0].detail


def test_claimed_worker_keys_that_the_quote_does_not_bind_fail(dcap_sample: Sample) -> None:
    policy, _ = _pinned(dcap_sample)
    me = WorkerIdentity.from_seed(bytes(32))
    v = verify_worker_quote(dcap_sample.raw, dcap_sample.collateral, identity_pk=me.public_key,
                            ecdh_pk=me.ecdh_public_key, at=dcap_sample.at, policy=policy)
    assert _names(v) == ["report_data"]


def test_sgx_policy_excluding_the_measurement_fails(sgx_sample: Sample) -> None:
    other = "11" * 32
    for overrides, failing in (
        ({"sgx": {"mr_enclave": [other]}}, "measurement.mr_enclave"),
        ({"sgx": {"mr_signer": [other, "22" * 32]}}, "measurement.mr_signer"),
        ({"sgx": {"isv_prod_id": 7}}, "measurement.isv_prod_id"),
        ({"sgx": {"min_isv_svn": 1}}, "measurement.isv_svn"),
    ):
        v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at,
                         policy=sgx_policy(**overrides), expected_report_data=SGX_REPORT_DATA)
        assert _names(v) == [failing], overrides


@pytest.mark.parametrize("field", sorted(TDX_MEASUREMENTS))
def test_tdx_policy_excluding_a_measurement_fails(tdx_sample: Sample, field: str) -> None:
    pins = {k: [v] for k, v in TDX_MEASUREMENTS.items()}
    pins[field] = ["ab" * 48]
    v = verify_quote(tdx_sample.raw, tdx_sample.collateral, at=tdx_sample.at,
                     policy=tdx_policy(tdx=pins), expected_report_data=TDX_REPORT_DATA)
    assert _names(v) == [f"measurement.{field}"]


def test_platform_not_in_policy_fails(sgx_sample: Sample, tdx_sample: Sample) -> None:
    v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at,
                     policy=sgx_policy(platforms=["tdx"]), expected_report_data=SGX_REPORT_DATA)
    assert _names(v) == ["platform"]
    v = verify_quote(tdx_sample.raw, tdx_sample.collateral, at=tdx_sample.at,
                     policy=tdx_policy(platforms=["sgx", "simulated"]),
                     expected_report_data=TDX_REPORT_DATA)
    assert _names(v) == ["platform"]


def test_collateral_age_limit_is_relative_to_the_verification_time(sgx_sample: Sample) -> None:
    week = sgx_policy(max_collateral_age_secs=7 * DAY)
    v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at, policy=week,
                     expected_report_data=SGX_REPORT_DATA)
    assert _names(v) == ["collateral_age"]
    assert v.collateral_issued_at is not None
    # A day after the newest part was issued, the same collateral is young enough.
    fresh_at = v.collateral_issued_at + 2 * DAY
    v = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=fresh_at, policy=week,
                     expected_report_data=SGX_REPORT_DATA)
    assert v.ok, v.failures


def test_outdated_v5_tdx_sample_fails_with_a_clear_reason(tdx_outdated_sample: Sample) -> None:
    s = tdx_outdated_sample
    v = verify_quote(s.raw, s.collateral, at=s.at, policy=Policy.permissive())
    assert not v.ok and _names(v) == ["quote"]
    detail = v.failures[0].detail
    assert "No matching TCB level found" in detail
    assert "outdated or unsupported platform" in detail
    # The verdict still shows what the quote claims, marked unverified.
    assert v.platform == "tdx" and v.quote_version == 5 and not v.signature_verified
    assert len(v.measurements["mr_td"]) == 48


def test_missing_or_broken_collateral_fails_without_raising(sgx_sample: Sample) -> None:
    v = verify_quote(sgx_sample.raw, None, at=sgx_sample.at, policy=Policy.permissive())
    assert _names(v) == ["quote"] and "no collateral" in v.failures[0].detail
    v = verify_quote(sgx_sample.raw, "{not json", at=sgx_sample.at, policy=Policy.permissive())
    assert _names(v) == ["quote"]
    v = verify_quote(b"\x03\x00garbage", None, at=sgx_sample.at, policy=Policy.permissive())
    assert _names(v) == ["quote"] and v.platform is None


def test_verification_is_fast(dcap_sample: Sample) -> None:
    policy, data = _pinned(dcap_sample)
    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        assert verify_quote(dcap_sample.raw, dcap_sample.collateral, at=dcap_sample.at,
                            policy=policy, expected_report_data=data).ok
    per_quote = (time.perf_counter() - started) / runs
    print(f"{dcap_sample.name}: {per_quote * 1e3:.2f} ms per verification")
    assert per_quote < 0.25  # measured ≈ 1-2 ms; generous for slow CI machines


def test_unsigned_bytes_do_not_change_the_verdict(sgx_sample: Sample) -> None:
    # Why nothing may be keyed on a hash of the raw quote: the PEM chain's line breaks (and
    # ~870 other bytes) are covered by no signature, so two different byte strings verify alike.
    newline = sgx_sample.raw.index(b"-----BEGIN CERTIFICATE-----") + 27
    assert sgx_sample.raw[newline : newline + 1] == b"\n"
    twin = bytearray(sgx_sample.raw)
    twin[newline] ^= 0x01
    assert bytes(twin) != sgx_sample.raw
    a = verify_quote(sgx_sample.raw, sgx_sample.collateral, at=sgx_sample.at,
                     policy=sgx_policy(), expected_report_data=SGX_REPORT_DATA)
    b = verify_quote(bytes(twin), sgx_sample.collateral, at=sgx_sample.at,
                     policy=sgx_policy(), expected_report_data=SGX_REPORT_DATA)
    assert a.ok and b.ok and a.to_dict() == b.to_dict()
