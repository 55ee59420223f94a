"""The shared attestation samples (real DCAP quotes + collateral), the times they are valid at,
what they contain, and policies that pin them.

The samples are public data from Phala-Network/dcap-qvl (MIT), committed under
``tests/fixtures/attestation`` with their origins and sha256 sums in SOURCES.md there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phat_runtime.tee import Policy

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"

#: Latest second at which every part of each sample's collateral is valid (SOURCES.md).
SGX_AT = 1752919277
TDX_AT = 1752919234

SGX_MR_ENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
SGX_MR_SIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
SGX_REPORT_DATA = b"Hello, world!".ljust(64, b"\0")
SGX_STATUS = "ConfigurationAndSWHardeningNeeded"
SGX_ADVISORIES = ("INTEL-SA-00289", "INTEL-SA-00615")
TDX_MEASUREMENTS = {
    "mr_td": "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
             "de03ae6dc5f87f27428b2538873118b7",
    "rtmr0": "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c"
             "48aca29b220b80b6a540cf994b9bc9c0",
    "rtmr1": "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7"
             "aea8c323c173019b3093d54e579e9378",
    "rtmr2": "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3"
             "ba80b70870d7330733642e01d48c3132",
    "rtmr3": "00" * 48,
}
TDX_REPORT_DATA = bytes.fromhex(
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
#: Byte offsets inside the signed report body (header 48 B + body field offset).
SGX_MR_ENCLAVE_OFFSET = 48 + 64
SGX_REPORT_DATA_OFFSET = 48 + 320
TDX_MR_TD_OFFSET = 48 + 136
TDX_REPORT_DATA_OFFSET = 48 + 520


@dataclass(frozen=True)
class Sample:
    name: str
    raw: bytes
    collateral: str
    at: int
    quote_path: Path
    collateral_path: Path


def load_sample(quote: str, collateral: str, at: int) -> Sample:
    qpath, cpath = SAMPLES / quote, SAMPLES / collateral
    return Sample(quote, qpath.read_bytes(), cpath.read_text(), at, qpath, cpath)


def sgx_policy(**overrides: object) -> Policy:
    """A strict policy that pins the SGX sample exactly (status, advisories, measurements)."""
    doc: dict[str, object] = {
        "platforms": ["sgx"], "tcb_statuses": [SGX_STATUS], "advisories": list(SGX_ADVISORIES),
        "sgx": {"mr_enclave": [SGX_MR_ENCLAVE], "mr_signer": [SGX_MR_SIGNER],
                "isv_prod_id": 0, "min_isv_svn": 0},
    }
    doc.update(overrides)
    return Policy.from_dict(doc)


def tdx_policy(**overrides: object) -> Policy:
    """A strict policy that pins the TDX sample exactly (MRTD and RTMR0-3)."""
    doc: dict[str, object] = {"platforms": ["tdx"], "tdx": {k: [v] for k, v in TDX_MEASUREMENTS.items()}}
    doc.update(overrides)
    return Policy.from_dict(doc)
