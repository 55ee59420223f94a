"""Hashing (keccak_256, blake2_256, blake2_128, sha2_256) and crypto (ecdsa_recover,
ecdsa_to_eth_address, sr25519_verify) against independent implementations."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import coincurve
import pytest
import sr25519
from Crypto.Hash import keccak

from phat_runtime.testing.harness import WatHarness, ret, wat

from .contracts import IN, INPUT_LEN, RES, read_input, u32


def _keccak(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


HASHES: dict[str, tuple[Callable[[bytes], bytes], int]] = {
    "hash_keccak_256": (_keccak, 32),
    "hash_blake2_256": (lambda d: hashlib.blake2b(d, digest_size=32).digest(), 32),
    "hash_blake2_128": (lambda d: hashlib.blake2b(d, digest_size=16).digest(), 16),
    "hash_sha2_256": (lambda d: hashlib.sha256(d).digest(), 32),
}


@pytest.mark.parametrize("name", sorted(HASHES))
@pytest.mark.parametrize("message", [b"", b"abc", bytes(range(256)) * 40])
def test_hash_matches_reference(h: WatHarness, name: str, message: bytes) -> None:
    reference, size = HASHES[name]
    hasher = wat(
        read_input()
        + f"(i64.store (i32.const {RES + size}) (i64.const -1))"  # a guard after the digest
        + f"(call $seal0.{name} (i32.const {IN}) {INPUT_LEN} (i32.const {RES}))"
        + ret(RES, size + 8)
    )
    r = h.call(h.deploy(hasher), message)
    assert r.data == reference(message) + b"\xff" * 8  # exactly `size` bytes written


def test_known_keccak_vector(h: WatHarness) -> None:
    hasher = wat(read_input() + f"(call $seal0.hash_keccak_256 (i32.const {IN}) {INPUT_LEN} (i32.const {RES}))" + ret(RES, 32))
    empty = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert h.call(h.deploy(hasher)).data == empty


# --- ecdsa ---------------------------------------------------------------------------------
RECOVER = wat(
    read_input()
    + f"(i32.store (i32.const {RES}) (call $seal0.ecdsa_recover (i32.const {IN}) (i32.const {IN + 65}) (i32.const {RES + 4})))"
    + ret(RES, 4 + 33)
)
SECRET = bytes(range(1, 33))
MESSAGE_HASH = hashlib.sha256(b"phat").digest()


def _signature() -> tuple[bytes, bytes]:
    key = coincurve.PrivateKey(SECRET)
    return key.sign_recoverable(MESSAGE_HASH, hasher=None), key.public_key.format(compressed=True)


@pytest.mark.parametrize("v_offset", [0, 27])  # v as 0/1 or Ethereum's 27/28
def test_ecdsa_recover_returns_the_compressed_key(h: WatHarness, v_offset: int) -> None:
    signature, public_key = _signature()
    signature = signature[:64] + bytes([signature[64] + v_offset])
    r = h.call(h.deploy(RECOVER), signature + MESSAGE_HASH)
    assert r.data == u32(0) + public_key


@pytest.mark.parametrize("damage", ["v = 4", "r = 0", "s = 0"])
def test_ecdsa_recover_failure_returns_11_and_writes_nothing(h: WatHarness, damage: str) -> None:
    signature, _ = _signature()
    r_, s_, v_ = signature[:32], signature[32:64], signature[64:]
    broken = {"v = 4": r_ + s_ + b"\x04", "r = 0": bytes(32) + s_ + v_, "s = 0": r_ + bytes(32) + v_}[damage]
    assert h.call(h.deploy(RECOVER), broken + MESSAGE_HASH).data == u32(11) + bytes(33)


def test_ecdsa_recover_of_another_hash_yields_another_key(h: WatHarness) -> None:
    signature, public_key = _signature()
    r = h.call(h.deploy(RECOVER), signature + hashlib.sha256(b"other").digest())
    assert r.data[:4] == u32(0) and len(r.data) == 37 and r.data[4:] != public_key


ETH_ADDRESS = wat(
    read_input()
    + f"(i32.store (i32.const {RES}) (call $seal0.ecdsa_to_eth_address (i32.const {IN}) (i32.const {RES + 4})))"
    + ret(RES, 4 + 20)
)
# Private key 1: the generator point, whose Ethereum address is well known.
G_COMPRESSED = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
G_ADDRESS = bytes.fromhex("7e5f4552091a69125d5dfcb7b8c2659029395bdf")


def test_ecdsa_to_eth_address_known_vector(h: WatHarness) -> None:
    assert h.call(h.deploy(ETH_ADDRESS), G_COMPRESSED).data == u32(0) + G_ADDRESS


def test_ecdsa_to_eth_address_of_an_invalid_key_returns_11(h: WatHarness) -> None:
    assert h.call(h.deploy(ETH_ADDRESS), b"\x02" + bytes(32)).data == u32(11) + bytes(20)


# --- sr25519 ---------------------------------------------------------------------------------
SR_VERIFY = wat(
    read_input()
    + f"(i32.store (i32.const {RES}) (call $seal0.sr25519_verify (i32.const {IN}) (i32.const {IN + 64}) "
    f"(i32.sub {INPUT_LEN} (i32.const 96)) (i32.const {IN + 96})))"
    + ret(RES, 4)
)


@pytest.mark.parametrize(
    ("tamper", "code"), [(None, 0), ("message", 12), ("signature", 12), ("public key", 12)]
)
def test_sr25519_verify(h: WatHarness, tamper: str | None, code: int) -> None:
    public, secret = sr25519.pair_from_seed(bytes(range(32)))
    message = b"signed by a pink contract"
    signature = bytes(sr25519.sign((public, secret), message))
    if tamper == "message":
        message += b"!"
    elif tamper == "signature":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif tamper == "public key":
        public = sr25519.pair_from_seed(bytes(32))[0]
    r = h.call(h.deploy(SR_VERIFY), signature + bytes(public) + message)
    assert (r.error, r.data) == (None, u32(code))
