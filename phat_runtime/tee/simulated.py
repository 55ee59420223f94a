"""The simulated TEE — for development only, NOT SECURE by design.

Owns: the simulated quote format (v1), its signing with a fixed, publicly known development
key and its parsing / signature check, and the simulated platform (sealing with a key kept in a
plain 0600 file). Must not: pretend to be secure — every entry point logs a loud warning, quotes
say ``simulated`` in their kind, and verifiers refuse them unless a policy explicitly allows
the simulated platform (development clusters only).

Anyone can forge a simulated quote: the "dev platform key" below is derived from a public
string. The signature only catches accidental corruption and keeps the code path identical to
real platforms.

Simulated quote v1 (169 bytes)::

    b"PHATSIMQ" ‖ 0x01 ‖ measurement (32) ‖ report_data (64) ‖ ed25519 signature (64)

The signature covers ``b"phat_runtime/simulated-quote/v1" ‖`` the first 105 bytes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phat_runtime.tee import sealing
from phat_runtime.tee.platform import (
    KIND_SIMULATED,
    PLATFORM_SIMULATED,
    REPORT_DATA_LEN,
    Quote,
    check_report_data,
)

log = logging.getLogger(__name__)

WARNING = ("SIMULATED TEE — development only, NOT SECURE: quotes are signed with a public "
           "development key and the sealing key sits in a plain file")

QUOTE_MAGIC = b"PHATSIMQ"
QUOTE_VERSION = 1
MEASUREMENT_LEN = 32
SIGNATURE_LEN = 64
SIGNED_LEN = len(QUOTE_MAGIC) + 1 + MEASUREMENT_LEN + REPORT_DATA_LEN
QUOTE_LEN = SIGNED_LEN + SIGNATURE_LEN
SIGNING_DOMAIN = b"phat_runtime/simulated-quote/v1"

#: The development platform key. Public on purpose: derived from this well-known string.
DEV_KEY_SEED = hashlib.sha256(b"phat_runtime/simulated-tee/dev-platform-key/v1 (public, NOT secret)").digest()
_DEV_KEY = Ed25519PrivateKey.from_private_bytes(DEV_KEY_SEED)
DEV_PUBLIC_KEY = _DEV_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
#: Measurement a simulated platform reports unless told otherwise.
DEFAULT_MEASUREMENT = hashlib.sha256(b"phat_runtime/simulated-tee/measurement/default").digest()
#: Name of the sealing key file inside the simulated platform's data directory.
SEAL_KEY_FILE = "simulated-seal.key"


@dataclass(frozen=True)
class SimulatedQuoteBody:
    measurement: bytes
    report_data: bytes


def encode_quote(measurement: bytes, report_data: bytes,
                 signing_key: Ed25519PrivateKey = _DEV_KEY) -> bytes:
    """A signed simulated quote. ``signing_key`` exists so tests can forge one with another key."""
    if len(measurement) != MEASUREMENT_LEN:
        raise ValueError(f"a simulated measurement is {MEASUREMENT_LEN} bytes")
    body = QUOTE_MAGIC + bytes([QUOTE_VERSION]) + measurement + check_report_data(report_data)
    return body + signing_key.sign(SIGNING_DOMAIN + body)


def is_simulated_quote(raw: bytes) -> bool:
    return raw.startswith(QUOTE_MAGIC)


def decode_quote(raw: bytes) -> SimulatedQuoteBody:
    """Parse without checking the signature; ``ValueError`` says what is malformed."""
    if not is_simulated_quote(raw):
        raise ValueError("not a simulated quote (bad magic)")
    if len(raw) != QUOTE_LEN:
        raise ValueError(f"simulated quote is {len(raw)} bytes, expected {QUOTE_LEN}")
    if raw[len(QUOTE_MAGIC)] != QUOTE_VERSION:
        raise ValueError(f"simulated quote version {raw[len(QUOTE_MAGIC)]}, expected {QUOTE_VERSION}")
    start = len(QUOTE_MAGIC) + 1
    return SimulatedQuoteBody(
        measurement=raw[start : start + MEASUREMENT_LEN],
        report_data=raw[start + MEASUREMENT_LEN : SIGNED_LEN],
    )


def signature_valid(raw: bytes) -> bool:
    """Whether the quote is signed by the development platform key (and only that key)."""
    if len(raw) != QUOTE_LEN:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(DEV_PUBLIC_KEY).verify(
            raw[SIGNED_LEN:], SIGNING_DOMAIN + raw[:SIGNED_LEN]
        )
    except InvalidSignature:
        return False
    return True


class SimulatedPlatform:
    """Development TEE: software quotes, sealing key in ``data_dir/simulated-seal.key`` (0600).

    Nothing touches the disk until the first :meth:`seal` / :meth:`unseal`.
    """

    name = PLATFORM_SIMULATED
    kind = KIND_SIMULATED

    def __init__(self, data_dir: Path, *, measurement: bytes = DEFAULT_MEASUREMENT) -> None:
        if len(measurement) != MEASUREMENT_LEN:
            raise ValueError(f"a simulated measurement is {MEASUREMENT_LEN} bytes")
        self.data_dir = Path(data_dir)
        self.measurement = measurement
        log.warning(WARNING)

    @property
    def key_file(self) -> Path:
        return self.data_dir / SEAL_KEY_FILE

    def _root_key(self, *, create: bool) -> bytes:
        if create and not self.key_file.exists():
            log.warning("%s: creating sealing key file %s", WARNING, self.key_file)
            return sealing.create_key_file(self.key_file)
        return sealing.read_key_file(self.key_file)

    def seal(self, plaintext: bytes) -> bytes:
        return sealing.seal(self._root_key(create=True), self.name, plaintext)

    def unseal(self, sealed: bytes) -> bytes:
        return sealing.unseal(self._root_key(create=False), self.name, sealed)

    def quote(self, report_data: bytes) -> Quote:
        log.warning("%s: producing a simulated quote", WARNING)
        raw = encode_quote(self.measurement, report_data)
        return Quote(kind=self.kind, raw=raw, report_data=bytes(report_data))
