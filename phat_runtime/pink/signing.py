"""pink chain-extension functions: keys and signatures (ids 2–5, 13, 14; HOST-ABI §3.2, §3.5).

sp_core semantics over our Python libraries:

- sr25519 (py-sr25519-bindings, signing context ``"substrate"``): a key is a 32-byte mini secret
  (Ed25519 expansion, ``Pair::from_seed``) or a 64-byte secret (scalar ‖ nonce, what
  ``derive_sr25519_key`` returns); 32-byte public key, 64-byte signature.
- ed25519: a key is a 32-byte seed; 32-byte public key, 64-byte signature. Signing is RFC 8032
  (PyNaCl; deterministic, the same bytes sp_core gives); **verifying follows sp_core's
  ed25519-zebra (ZIP-215) rules** through :func:`~phat_runtime.crypto.signatures.ed25519_verify`
  — small-order and non-canonical points accepted, non-canonical S refused, cofactored
  equation — because ``verify`` runs in transactions and must agree with Substrate.
- ecdsa secp256k1 (coincurve): a key is a 32-byte secret; ``sign`` signs blake2_256(message)
  (RFC 6979, so the same bytes sp_core gives); a signature is r ‖ s ‖ v with v ∈ {0, 1};
  the public key is 33 bytes compressed; verifying recovers the key and compares.

A malformed key, public key or signature fails the contract call (pink: ``Invalid key`` …), an
honest mismatch is ``false``. In deterministic modes ``sign`` with sr25519 returns an empty vec
(schnorrkel signatures are randomised); everything else behaves the same in every mode.

Must not: keep or log key material — keys live only for the duration of one call.
"""

from __future__ import annotations

from collections.abc import Callable

import coincurve
import nacl.signing
import sr25519

from phat_runtime.codec.scale import Reader, ScaleError
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.kdf import derive_contract_sr25519
from phat_runtime.crypto.signatures import SIGNATURE_GAS, ecdsa_recover_compressed, ed25519_verify
from phat_runtime.errors import ChainExtensionError
from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv, decode
from phat_runtime.pink.misc import OK, encode_bool, encode_bytes
from phat_runtime.pink.structs import SigType
from phat_runtime.types import ExecutionMode

SIGN, VERIFY, DERIVE_SR25519_KEY, GET_PUBLIC_KEY = 2, 3, 4, 5
ECDSA_SIGN_PREHASHED, ECDSA_VERIFY_PREHASHED = 13, 14

SEED_LEN = 32
SR25519_SECRET_LEN = 64
PUBLIC_LEN = 32
SIGNATURE_LEN = 64
ECDSA_PUBLIC_LEN = 33
ECDSA_SIGNATURE_LEN = 65
HASH_LEN = 32


def _invalid(what: str, detail: str) -> ChainExtensionError:
    kind = {"key": "InvalidKey", "public key": "InvalidPublicKey", "signature": "InvalidSignature"}[what]
    return ChainExtensionError(f"{kind}: {detail}", kind=kind)


def _read_sig_type(r: Reader) -> SigType:
    tag = r.u8()
    try:
        return SigType(tag)
    except ValueError:
        raise ScaleError(f"invalid SigType variant {tag} (0 Ed25519, 1 Sr25519, 2 Ecdsa)") from None


# --- primitives (sp_core's Pair::from_seed_slice / sign / verify) ---------------------------


def _sr25519_pair(key: bytes) -> tuple[bytes, bytes]:
    """(public, 64-byte secret) from a 32-byte mini secret or a 64-byte secret."""
    try:
        if len(key) == SEED_LEN:
            public, secret = sr25519.pair_from_seed(key)
            return bytes(public), bytes(secret)
        if len(key) == SR25519_SECRET_LEN:
            return bytes(sr25519.public_from_secret_key(key)), key
    except ValueError as exc:
        raise _invalid("key", f"not a valid sr25519 secret ({exc})") from None
    raise _invalid("key", f"an sr25519 key is a 32-byte seed or a 64-byte secret, got {len(key)} bytes")


def _ed25519_key(key: bytes) -> nacl.signing.SigningKey:
    if len(key) != SEED_LEN:
        raise _invalid("key", f"an ed25519 key is a 32-byte seed, got {len(key)} bytes")
    return nacl.signing.SigningKey(key)


def _ecdsa_key(key: bytes) -> coincurve.PrivateKey:
    if len(key) != SEED_LEN:
        raise _invalid("key", f"an ecdsa key is a 32-byte secret, got {len(key)} bytes")
    try:
        return coincurve.PrivateKey(key)
    except ValueError:
        raise _invalid("key", "not a valid secp256k1 secret (zero or not below the group order)") from None


def _check_len(what: str, value: bytes, expected: int, sig_type: SigType) -> None:
    if len(value) != expected:
        raise _invalid(what, f"{sig_type.name.lower()} {what} must be {expected} bytes, got {len(value)}")


def ecdsa_sign_prehashed(key: bytes, message_hash: bytes) -> bytes:
    """65-byte recoverable signature r ‖ s ‖ v (v ∈ {0, 1}) of a 32-byte hash."""
    return bytes(_ecdsa_key(key).sign_recoverable(message_hash, hasher=None))


def ecdsa_verify_prehashed(signature: bytes, message_hash: bytes, public: bytes) -> bool:
    # sp_core reads v as a RecoveryId (0..=3); Ethereum's 27/28 do not recover here.
    if signature[64] > 3:
        return False
    return ecdsa_recover_compressed(signature, message_hash) == public


def sign(sig_type: SigType, key: bytes, message: bytes) -> bytes:
    if sig_type is SigType.SR25519:
        public, secret = _sr25519_pair(key)
        return bytes(sr25519.sign((public, secret), message))
    if sig_type is SigType.ED25519:
        return bytes(_ed25519_key(key).sign(message).signature)
    return ecdsa_sign_prehashed(key, blake2_256(message))


def verify(sig_type: SigType, public: bytes, message: bytes, signature: bytes) -> bool:
    if sig_type is SigType.ECDSA:
        _check_len("public key", public, ECDSA_PUBLIC_LEN, sig_type)
        _check_len("signature", signature, ECDSA_SIGNATURE_LEN, sig_type)
        return ecdsa_verify_prehashed(signature, blake2_256(message), public)
    _check_len("public key", public, PUBLIC_LEN, sig_type)
    _check_len("signature", signature, SIGNATURE_LEN, sig_type)
    if sig_type is SigType.SR25519:
        try:
            return bool(sr25519.verify(signature, message, public))
        except ValueError:  # not a schnorrkel signature / not a curve point: just false
            return False
    return ed25519_verify(signature, message, public)


def public_key(sig_type: SigType, key: bytes) -> bytes:
    if sig_type is SigType.SR25519:
        return _sr25519_pair(key)[0]
    if sig_type is SigType.ED25519:
        return bytes(_ed25519_key(key).verify_key.encode())
    return bytes(_ecdsa_key(key).public_key.format(compressed=True))


# --- handlers ----------------------------------------------------------------------------------


def _sign_args(data: bytes) -> tuple[SigType, bytes, bytes]:
    return decode(data, "sign(SigType, key, message)", lambda r: (_read_sig_type(r), r.blob(), r.blob()))


def sign_any(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``sign(sig_type, key, message) -> Vec<u8>``.

    Availability: query | transaction (sr25519 only in queries: an empty vec otherwise).
    """
    sig_type, key, message = _sign_args(data)
    return OK, encode_bytes(sign(sig_type, key, message))


def sign_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``sign`` in transactions: sr25519 signatures are randomised, so they come back empty.

    Availability: query | transaction (sr25519 only in queries: an empty vec otherwise).
    """
    sig_type, key, message = _sign_args(data)
    if sig_type is SigType.SR25519:
        return OK, encode_bytes(b"")
    return OK, encode_bytes(sign(sig_type, key, message))


def verify_handler(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``verify(sig_type, pubkey, message, signature) -> bool``.

    Availability: query | transaction
    """
    sig_type, public, message, signature = decode(
        data, "verify(SigType, pubkey, message, signature)",
        lambda r: (_read_sig_type(r), r.blob(), r.blob(), r.blob()),
    )
    return OK, encode_bool(verify(sig_type, public, message, signature))


def derive_sr25519_key(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``derive_sr25519_key(salt) -> Vec<u8>``: the contract's 64-byte sr25519 secret for
    ``salt``, KDF(cluster key, [contract, salt, "keygen"]) — the same on every worker of the
    cluster. No cluster key ⇒ ``KeySeedMissing``.

    Availability: query | transaction
    """
    salt = decode(data, "derive_sr25519_key(salt)", Reader.blob)
    cluster_secret = env.services.cluster_secret
    if cluster_secret is None:
        raise ChainExtensionError("KeySeedMissing: this cluster has no key to derive from", kind="KeySeedMissing")
    try:
        secret = derive_contract_sr25519(cluster_secret, env.contract, salt)
    except ValueError as exc:
        raise ChainExtensionError(f"DeriveKeyFailed: {exc}", kind="DeriveKeyFailed") from None
    return OK, encode_bytes(secret)


def get_public_key(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``get_public_key(sig_type, key) -> Vec<u8>`` (32 bytes sr25519/ed25519, 33 ecdsa).

    Availability: query | transaction
    """
    sig_type, key = decode(data, "get_public_key(SigType, key)", lambda r: (_read_sig_type(r), r.blob()))
    return OK, encode_bytes(public_key(sig_type, key))


def ecdsa_sign_prehashed_handler(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``ecdsa_sign_prehashed(key, message_hash: [u8; 32]) -> [u8; 65]``.

    Availability: query | transaction
    """
    key, message_hash = decode(
        data, "ecdsa_sign_prehashed(key, hash)", lambda r: (r.blob(), r.array(HASH_LEN))
    )
    return OK, ecdsa_sign_prehashed(key, message_hash)


def ecdsa_verify_prehashed_handler(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``ecdsa_verify_prehashed(signature: [u8; 65], message_hash: [u8; 32], pubkey: [u8; 33])
    -> bool``.

    Availability: query | transaction
    """
    signature, message_hash, public = decode(
        data, "ecdsa_verify_prehashed(signature, hash, pubkey)",
        lambda r: (r.array(ECDSA_SIGNATURE_LEN), r.array(HASH_LEN), r.array(ECDSA_PUBLIC_LEN)),
    )
    return OK, encode_bool(ecdsa_verify_prehashed(signature, message_hash, public))


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register this module's functions with the behaviour of ``mode``."""
    handlers: dict[int, Callable[[ExtensionEnv, bytes], tuple[int, bytes]]] = {
        SIGN: sign_deterministic if mode.deterministic else sign_any,
        VERIFY: verify_handler,
        DERIVE_SR25519_KEY: derive_sr25519_key,
        GET_PUBLIC_KEY: get_public_key,
        ECDSA_SIGN_PREHASHED: ecdsa_sign_prehashed_handler,
        ECDSA_VERIFY_PREHASHED: ecdsa_verify_prehashed_handler,
    }
    for func, handler in handlers.items():
        registry.register(func, handler, gas=SIGNATURE_GAS)

