"""Keys and signatures through real wasm: ids 2 sign, 3 verify, 4 derive_sr25519_key,
5 get_public_key, 13 ecdsa_sign_prehashed, 14 ecdsa_verify_prehashed (HOST-ABI §3.2, §3.5).

Every expected value is computed independently of the code under test (substrate-interface,
PyNaCl, coincurve, py-sr25519-bindings directly)."""

from __future__ import annotations

import hashlib

import bip39
import coincurve
import nacl.signing
import pytest
import sr25519
from substrateinterface import Keypair
from substrateinterface.constants import DEV_PHRASE

from phat_runtime.codec.scale import Writer
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.kdf import derive_contract_sr25519
from phat_runtime.pink.services import PinkServices
from phat_runtime.runtime.local import LocalCluster
from phat_runtime.testing.harness import to_wasm
from phat_runtime.types import ExecutionMode

from .wat_ext import CLUSTER_SECRET, DETERMINISTIC, MODES, PinkHarness, Script, blob

SIGN, VERIFY, DERIVE, PUBKEY, ECDSA_SIGN, ECDSA_VERIFY = 2, 3, 4, 5, 13, 14
ED25519, SR25519, ECDSA = 0, 1, 2
ALICE_SR25519 = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
ALICE_ED25519 = "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"
#: secp256k1 group order: a key equal to it is invalid.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ECDSA_KEY = bytes(range(1, 33))
MESSAGE = b"phat contracts sign this"


def alice_sr25519_secret() -> bytes:
    return bytes(Keypair.create_from_uri("//Alice").private_key)


def alice_ed25519_seed() -> bytes:
    """Substrate's ed25519 hard derivation: blake2b-256(SCALE("Ed25519HDKD") ‖ seed ‖ chain code)."""
    seed = bytes(bip39.bip39_to_mini_secret(DEV_PHRASE, ""))
    chain_code = Writer().string("Alice").finish().ljust(32, b"\0")
    return hashlib.blake2b(Writer().string("Ed25519HDKD").finish() + seed + chain_code, digest_size=32).digest()


def sign_args(sig_type: int, key: bytes, message: bytes = MESSAGE) -> bytes:
    return bytes([sig_type]) + blob(key) + blob(message)


def verify_args(sig_type: int, public: bytes, signature: bytes, message: bytes = MESSAGE) -> bytes:
    return bytes([sig_type]) + blob(public) + blob(message) + blob(signature)


def vec(out: bytes) -> bytes:
    """Strip the compact length of a ``Vec<u8>`` output (checking it)."""
    from phat_runtime.codec.scale import Reader

    r = Reader(out)
    value = r.blob()
    r.end()
    return value


@pytest.fixture()
def h() -> PinkHarness:
    return PinkHarness()


# --- get_public_key (5) -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_alice_sr25519_public_key_from_her_64_byte_secret(h: PinkHarness, mode: ExecutionMode) -> None:
    out = h.one(PUBKEY, bytes([SR25519]) + blob(alice_sr25519_secret()), mode)
    assert (out.status, vec(out.output).hex()) == (0, ALICE_SR25519)


@pytest.mark.parametrize("mode", MODES)
def test_alice_ed25519_public_key_from_her_derived_seed(h: PinkHarness, mode: ExecutionMode) -> None:
    out = h.one(PUBKEY, bytes([ED25519]) + blob(alice_ed25519_seed()), mode)
    assert vec(out.output).hex() == ALICE_ED25519


@pytest.mark.parametrize("mode", MODES)
def test_sr25519_public_key_from_a_32_byte_mini_secret(h: PinkHarness, mode: ExecutionMode) -> None:
    seed = bytes(range(32))
    expected = bytes(sr25519.pair_from_seed(seed)[0])
    assert vec(h.one(PUBKEY, bytes([SR25519]) + blob(seed), mode).output) == expected


@pytest.mark.parametrize("mode", MODES)
def test_ecdsa_public_key_is_33_bytes_compressed(h: PinkHarness, mode: ExecutionMode) -> None:
    expected = coincurve.PrivateKey(ECDSA_KEY).public_key.format(compressed=True)
    assert vec(h.one(PUBKEY, bytes([ECDSA]) + blob(ECDSA_KEY), mode).output) == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("sig_type", "key"),
    [
        (SR25519, bytes(10)),  # neither 32 nor 64 bytes
        (SR25519, b"\xff" * 64),  # scalar with the high bit set: not a schnorrkel secret
        (ED25519, bytes(31)),
        (ED25519, bytes(64)),
        (ECDSA, bytes(32)),  # zero
        (ECDSA, SECP256K1_N.to_bytes(32, "big")),  # not below the group order
        (ECDSA, bytes(33)),
    ],
)
def test_malformed_keys_fail_the_call(h: PinkHarness, mode: ExecutionMode, sig_type: int, key: bytes) -> None:
    assert h.failure(PUBKEY, bytes([sig_type]) + blob(key), mode) == "InvalidKey"


@pytest.mark.parametrize(
    "payload",
    [bytes([3]) + blob(bytes(32)), bytes([ED25519]) + blob(bytes(32)) + b"\x00", bytes([ED25519]) + b"\x80"],
    ids=["unknown-sig-type", "trailing-byte", "truncated"],
)
def test_undecodable_arguments_fail_with_decoding_failed(h: PinkHarness, payload: bytes) -> None:
    assert h.failure(PUBKEY, payload) == "DecodingFailed"


# --- sign (2) / verify (3) --------------------------------------------------------------------


def test_sr25519_sign_in_a_query_verifies_independently(h: PinkHarness) -> None:
    secret = alice_sr25519_secret()
    signature = vec(h.one(SIGN, sign_args(SR25519, secret)).output)
    assert len(signature) == 64
    assert sr25519.verify(signature, MESSAGE, bytes.fromhex(ALICE_SR25519))
    assert h.one(VERIFY, verify_args(SR25519, bytes.fromhex(ALICE_SR25519), signature)).output == b"\x01"


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_sr25519_sign_outside_queries_is_empty(h: PinkHarness, mode: ExecutionMode) -> None:
    out = h.one(SIGN, sign_args(SR25519, alice_sr25519_secret()), mode)
    assert (out.status, out.output) == (0, b"\x00")  # an empty Vec<u8>


@pytest.mark.parametrize("mode", MODES)
def test_ed25519_sign_is_deterministic_in_every_mode(h: PinkHarness, mode: ExecutionMode) -> None:
    seed = alice_ed25519_seed()
    expected = nacl.signing.SigningKey(seed).sign(MESSAGE).signature
    assert vec(h.one(SIGN, sign_args(ED25519, seed), mode).output) == expected
    public = bytes.fromhex(ALICE_ED25519)
    assert h.one(VERIFY, verify_args(ED25519, public, expected), mode).output == b"\x01"
    assert h.one(VERIFY, verify_args(ED25519, public, expected, b"other"), mode).output == b"\x00"


@pytest.mark.parametrize("mode", MODES)
def test_ecdsa_sign_signs_blake2_of_the_message_and_recovers(h: PinkHarness, mode: ExecutionMode) -> None:
    signature = vec(h.one(SIGN, sign_args(ECDSA, ECDSA_KEY), mode).output)
    assert len(signature) == 65 and signature[64] in (0, 1)
    recovered = coincurve.PublicKey.from_signature_and_message(signature, blake2_256(MESSAGE), hasher=None)
    public = coincurve.PrivateKey(ECDSA_KEY).public_key.format(compressed=True)
    assert recovered.format(compressed=True) == public
    assert signature == coincurve.PrivateKey(ECDSA_KEY).sign_recoverable(blake2_256(MESSAGE), hasher=None)
    assert h.one(VERIFY, verify_args(ECDSA, public, signature), mode).output == b"\x01"
    assert h.one(VERIFY, verify_args(ECDSA, public, signature, b"tampered"), mode).output == b"\x00"


@pytest.mark.parametrize("mode", MODES)
def test_sr25519_verify_in_every_mode(h: PinkHarness, mode: ExecutionMode) -> None:
    public, secret = sr25519.pair_from_seed(bytes(32))
    signature = bytes(sr25519.sign((public, secret), MESSAGE))
    assert h.one(VERIFY, verify_args(SR25519, bytes(public), signature), mode).output == b"\x01"
    assert h.one(VERIFY, verify_args(SR25519, bytes(public), signature, b"x"), mode).output == b"\x00"
    # 64 bytes that are not a schnorrkel signature: a plain "no"
    assert h.one(VERIFY, verify_args(SR25519, bytes(public), bytes(64)), mode).output == b"\x00"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("sig_type", "public", "signature", "kind"),
    [
        (SR25519, bytes(31), bytes(64), "InvalidPublicKey"),
        (SR25519, bytes(32), bytes(63), "InvalidSignature"),
        (ED25519, bytes(33), bytes(64), "InvalidPublicKey"),
        (ED25519, bytes(32), bytes(65), "InvalidSignature"),
        (ECDSA, bytes(32), bytes(65), "InvalidPublicKey"),
        (ECDSA, bytes(33), bytes(64), "InvalidSignature"),
    ],
)
def test_verify_with_malformed_key_or_signature_fails(
    h: PinkHarness, mode: ExecutionMode, sig_type: int, public: bytes, signature: bytes, kind: str
) -> None:
    assert h.failure(VERIFY, verify_args(sig_type, public, signature), mode) == kind


@pytest.mark.parametrize("mode", MODES)
def test_sign_with_a_malformed_key_fails(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.failure(SIGN, sign_args(ED25519, bytes(5)), mode) == "InvalidKey"
    assert h.failure(SIGN, sign_args(ECDSA, bytes(32)), mode) == "InvalidKey"


def test_sr25519_sign_with_a_malformed_key_fails_in_a_query(h: PinkHarness) -> None:
    assert h.failure(SIGN, sign_args(SR25519, bytes(5))) == "InvalidKey"


# --- ecdsa prehashed (13, 14) ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_ecdsa_prehashed_round_trip(h: PinkHarness, mode: ExecutionMode) -> None:
    digest = hashlib.sha256(b"any 32-byte hash").digest()
    out = h.one(ECDSA_SIGN, blob(ECDSA_KEY) + digest, mode)
    signature = out.output  # [u8; 65]: no length prefix
    assert len(signature) == 65 and signature[64] in (0, 1)
    public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None).format(compressed=True)
    assert public == coincurve.PrivateKey(ECDSA_KEY).public_key.format(compressed=True)
    assert h.one(ECDSA_VERIFY, signature + digest + public, mode).output == b"\x01"
    assert h.one(ECDSA_VERIFY, signature + bytes(32) + public, mode).output == b"\x00"
    eth_style = signature[:64] + bytes([signature[64] + 27])
    assert h.one(ECDSA_VERIFY, eth_style + digest + public, mode).output == b"\x00"
    assert h.one(ECDSA_VERIFY, bytes(65) + digest + public, mode).output == b"\x00"


@pytest.mark.parametrize("mode", MODES)
def test_ecdsa_prehashed_errors(h: PinkHarness, mode: ExecutionMode) -> None:
    assert h.failure(ECDSA_SIGN, blob(bytes(32)) + bytes(32), mode) == "InvalidKey"
    assert h.failure(ECDSA_SIGN, blob(ECDSA_KEY) + bytes(31), mode) == "DecodingFailed"
    assert h.failure(ECDSA_VERIFY, bytes(65 + 32 + 32), mode) == "DecodingFailed"


# --- derive_sr25519_key (4) --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_derive_key_is_the_pink_kdf_of_contract_and_salt(h: PinkHarness, mode: ExecutionMode) -> None:
    secret = vec(h.one(DERIVE, blob(b"salt"), mode).output)
    assert len(secret) == 64
    assert secret == derive_contract_sr25519(CLUSTER_SECRET, h.script, b"salt")
    assert secret != vec(h.one(DERIVE, blob(b"other salt"), mode).output)
    # The derived secret is a key the other functions accept.
    public = vec(h.one(PUBKEY, bytes([SR25519]) + blob(secret), mode).output)
    assert public == bytes(sr25519.public_from_secret_key(secret))


def test_derived_key_differs_per_contract(h: PinkHarness) -> None:
    from .wat_ext import SCRIPT_CONTRACT

    other = h.deploy(SCRIPT_CONTRACT, salt=b"second")
    first = h.one(DERIVE, blob(b"salt")).output
    _, outs = h.run(Script().ext(DERIVE, blob(b"salt")), contract=other)
    assert outs[0].output != first


@pytest.mark.parametrize("mode", MODES)
def test_derive_key_without_a_cluster_key_is_key_seed_missing(mode: ExecutionMode) -> None:
    h = PinkHarness(PinkServices())
    assert h.failure(DERIVE, blob(b"salt"), mode) == "KeySeedMissing"


@pytest.mark.parametrize("mode", MODES)
def test_derive_key_from_a_malformed_cluster_key_is_derive_key_failed(mode: ExecutionMode) -> None:
    h = PinkHarness(PinkServices(cluster_secret=bytes(32)))  # a cluster key is 64 bytes
    assert h.failure(DERIVE, blob(b"salt"), mode) == "DeriveKeyFailed"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("func", "payload"),
    [
        (DERIVE, b"\x0cab"),
        (SIGN, bytes([ED25519]) + blob(bytes(32))),
        (SIGN, bytes([SR25519]) + blob(bytes(32)) + blob(b"m") + b"\x00"),
        (VERIFY, bytes([ED25519]) + blob(bytes(32)) + blob(b"m")),
    ],
    ids=["derive-truncated", "sign-missing-message", "sign-trailing", "verify-missing-signature"],
)
def test_undecodable_sign_verify_derive_arguments(h: PinkHarness, mode: ExecutionMode, func: int, payload: bytes) -> None:
    assert h.failure(func, payload, mode) == "DecodingFailed"


def test_derive_key_output_must_fit_the_buffer(h: PinkHarness) -> None:
    result, _ = h.run(Script().ext(DERIVE, blob(b"salt"), cap=64))  # 1 + 64 bytes needed
    assert result.error is not None and result.error.kind == "ContractIoBufferOverflow"


def _derived_on(cluster: LocalCluster, salt: bytes) -> tuple[bytes, bytes]:
    from .wat_ext import SCRIPT_CONTRACT

    runtime = cluster.runtime
    alice = cluster.account("alice")
    code_hash = runtime.upload_code(to_wasm(SCRIPT_CONTRACT), alice)
    deployed = runtime.instantiate(alice, code_hash, b"", block=cluster.block)
    assert deployed.success and deployed.contract is not None
    script = Script().ext(DERIVE, blob(salt))
    result = runtime.call(alice, deployed.contract, script.encode(), mode=ExecutionMode.QUERY, block=cluster.block)
    assert result.error is None, result.error
    return deployed.contract, vec(script.parse(result.data)[0].output)


def test_same_cluster_key_gives_the_same_keys_on_independent_runtimes() -> None:
    a_contract, a_key = _derived_on(LocalCluster(cluster_secret=CLUSTER_SECRET), b"vrf:x")
    b_contract, b_key = _derived_on(LocalCluster(cluster_secret=CLUSTER_SECRET), b"vrf:x")
    assert a_contract == b_contract and a_key == b_key
    other = sr25519.pair_from_seed(b"\x07" * 32)[1]
    c_contract, c_key = _derived_on(LocalCluster(cluster_secret=bytes(other)), b"vrf:x")
    assert c_contract == a_contract and c_key != a_key


def test_local_clusters_get_a_random_cluster_key_that_is_not_shown() -> None:
    first, second = LocalCluster(), LocalCluster()
    key = first.runtime.services.cluster_secret
    assert key is not None and len(key) == 64 and key != second.runtime.services.cluster_secret
    assert key.hex() not in repr(first.runtime.services)
    assert _derived_on(first, b"s")[1] != _derived_on(second, b"s")[1]


def test_local_cluster_takes_services_and_an_explicit_secret_wins() -> None:
    from phat_runtime.pink.cache import LocalCache
    from phat_runtime.pink.logs import LogStore

    other = bytes(sr25519.pair_from_seed(b"\x09" * 32)[1])
    cache = LocalCache()
    given = PinkServices(cluster_secret=other, cache=cache, worker_pubkey=b"\x01" * 32)
    services = LocalCluster(services=given).runtime.services
    assert (services.cluster_secret, services.cache, services.worker_pubkey) == (other, cache, b"\x01" * 32)
    assert isinstance(services.logs, LogStore) and given.logs is None  # the caller's object is untouched
    assert LocalCluster(services=given, cluster_secret=CLUSTER_SECRET).runtime.services.cluster_secret == CLUSTER_SECRET
