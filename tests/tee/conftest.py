"""Fixtures for the attestation samples committed in tests/fixtures/attestation."""

from __future__ import annotations

import pytest

from phat_runtime.tee import collateral_dates

from .samples import SGX_AT, TDX_AT, Sample, load_sample


@pytest.fixture()
def sgx_sample() -> Sample:
    return load_sample("sgx_quote", "sgx_quote_collateral.json", SGX_AT)


@pytest.fixture()
def tdx_sample() -> Sample:
    return load_sample("tdx_quote", "tdx_quote_collateral.json", TDX_AT)


@pytest.fixture()
def tdx_outdated_sample() -> Sample:
    sample = load_sample("tdx_quote_outdated", "tdx_quote_outdated_collateral.json", 0)
    # Inside its collateral window, so the only possible failure is the TCB level itself.
    at = collateral_dates(sample.collateral).expires_at - 1
    return Sample(sample.name, sample.raw, sample.collateral, at, sample.quote_path,
                  sample.collateral_path)


@pytest.fixture(params=["sgx", "tdx"])
def dcap_sample(request: pytest.FixtureRequest) -> Sample:
    if request.param == "sgx":
        return load_sample("sgx_quote", "sgx_quote_collateral.json", SGX_AT)
    return load_sample("tdx_quote", "tdx_quote_collateral.json", TDX_AT)
