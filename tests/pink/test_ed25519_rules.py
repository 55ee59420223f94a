"""pink's ``verify`` (id 3) for ed25519 accepts exactly what Substrate's sp_core accepts.

sp_core verifies ed25519 with ed25519-zebra, i.e. the ZIP-215 rules:

- S must be canonical (S < ℓ);
- A (the public key) and R may be any encoding of a curve point: non-canonical y (y ≥ p),
  small-order and mixed-order points included;
- the cofactored equation [8][S]B = [8]R + [8][k]A decides, k = SHA-512(R ‖ A ‖ M) mod ℓ over
  the bytes as given.

PyNaCl (libsodium) refuses small-order keys and uses the cofactorless equation, so two
workers — or a worker and the chain — using different libraries would disagree on a
chain-ordered transaction. The vectors below are our own, built with the small independent
Edwards-curve arithmetic in this file (:func:`build_vectors` re-derives every committed hex
string, so anyone can see how each was made), and each is run through real wasm in every
execution mode.
"""

from __future__ import annotations

import hashlib

import ed25519_zebra
import nacl.exceptions
import nacl.signing
import pytest

from phat_runtime.crypto.signatures import ed25519_verify
from phat_runtime.crypto.signer import Scheme
from phat_runtime.crypto.signer import verify as verify_request
from phat_runtime.types import ExecutionMode

from .wat_ext import MODES, PinkHarness, blob

VERIFY, ED25519 = 3, 0

# --- a minimal edwards25519 (only to *build* vectors; the runtime never uses it) -----------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def add(p: Point, q: Point) -> Point:
    (x1, y1), (x2, y2) = p, q
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P)


def mul(n: int, p: Point) -> Point:
    result = IDENTITY
    while n:
        if n & 1:
            result = add(result, p)
        p, n = add(p, p), n >> 1
    return result


def recover_x(y: int, sign: int) -> int | None:
    xx = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    if (x * x - xx) % P:
        return None
    return P - x if x and (x & 1) != sign else x


def encode(p: Point, y_offset: int = 0) -> bytes:
    """Point encoding; ``y_offset = P`` writes y non-canonically (y + p < 2²⁵⁵)."""
    x, y = p
    return ((y + y_offset) | ((x & 1) << 255)).to_bytes(32, "little")


B: Point = (recover_x(4 * pow(5, -1, P) % P, 0) or 0, 4 * pow(5, -1, P) % P)


def scalar(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % L


def order8_point() -> Point:
    """A point of exact order 8: ℓ·Q for a curve point Q with a full torsion component."""
    y = 2
    while True:
        x = recover_x(y, 0)
        if x is not None:
            t = mul(L, (x, y))
            if mul(4, t) != IDENTITY:
                return t
        y += 1


def sign_with(a: int, public: bytes, message: bytes, nonce_seed: bytes) -> bytes:
    """An ed25519 signature with secret scalar ``a`` under the given public-key *bytes*."""
    r = scalar(nonce_seed)
    big_r = encode(mul(r, B))
    s = (r + scalar(big_r + public + message) * a) % L
    return big_r + s.to_bytes(32, "little")


MESSAGE = b"phat_runtime ed25519 rule vector"
SEED = hashlib.blake2b(b"phat_runtime ed25519 vector seed", digest_size=32).digest()


def build_vectors() -> dict[str, tuple[bytes, bytes]]:
    """(public key, signature) of every vector, each over :data:`MESSAGE`."""
    secret = hashlib.sha512(SEED).digest()
    a = int.from_bytes(secret[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    public = encode(mul(a, B))
    honest = sign_with(a, public, MESSAGE, secret[32:] + MESSAGE)  # RFC 8032's nonce rule
    s_honest = int.from_bytes(honest[32:], "little")
    t8 = order8_point()
    zero_sig = encode(IDENTITY) + bytes(32)
    # Mixed order: A' = A + T8, signed with a under A' — valid only with the cofactor.
    mixed = encode(add(mul(a, B), t8))
    nonce = 0
    while True:  # a k that is not a multiple of 8 makes the cofactorless check fail
        mixed_sig = sign_with(a, mixed, MESSAGE, b"mixed nonce" + bytes([nonce]))
        if scalar(mixed_sig[:32] + mixed + MESSAGE) % 8:
            break
        nonce += 1
    return {
        "honest": (public, honest),
        "identity key, identity R, S = 0": (encode(IDENTITY), zero_sig),
        "non-canonical identity key": (encode(IDENTITY, P), zero_sig),
        "non-canonical identity R": (encode(IDENTITY), encode(IDENTITY, P) + bytes(32)),
        "order-8 key, order-8 R, S = 0": (encode(t8), encode(t8) + bytes(32)),
        "mixed-order key (cofactored only)": (mixed, mixed_sig),
        "S + ℓ (non-canonical S)": (public, honest[:32] + (s_honest + L).to_bytes(32, "little")),
        "S with the top bits set": (public, honest[:32] + (s_honest | (0b111 << 253)).to_bytes(32, "little")),
        "key is not a curve point": ((2).to_bytes(32, "little"), honest),
        "R is not a curve point": (public, (2).to_bytes(32, "little") + honest[32:]),
        "honest signature, key with the sign bit flipped": (public[:31] + bytes([public[31] ^ 0x80]), honest),
    }


#: The committed vectors, each over :data:`MESSAGE`: public key, signature, what sp_core
#: (ed25519-zebra, ZIP-215) answers, and what PyNaCl answers — where the two differ, a runtime
#: verifying with PyNaCl would fork from the chain.
VECTORS: dict[str, tuple[str, str, bool, bool]] = {
    "honest": (
        "3684891d7c641105dcb68709edbb3c51ed3a30837e44cd5f52ce6f287ce46d72",
        "d98ffb78f38ac62f408137847f295f8bad2af942e64779becc3818702c6e4395"
        "5bc54a74a8b1195f7c5cded52b058d00a994ff723b542f33056aa239139b9005",
        True, True,
    ),
    "identity key, identity R, S = 0": (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000",
        True, False,
    ),
    "non-canonical identity key": (
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0100000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000",
        True, False,
    ),
    "non-canonical identity R": (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        "0000000000000000000000000000000000000000000000000000000000000000",
        True, False,
    ),
    "order-8 key, order-8 R, S = 0": (
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
        "0000000000000000000000000000000000000000000000000000000000000000",
        True, False,
    ),
    "mixed-order key (cofactored only)": (
        "1c2131a4f08cc45ed84f6a73439baf65482606bebe16eead419d47402267b2c7",
        "8d01b6f255b9b0a733c92ea22718920ed7824e4d5beb86235b05dfa7543730b3"
        "b824d30e601914a6cc32bf74842db7d486c14a3009eb4e96167ef1435a892103",
        True, False,
    ),
    "S + ℓ (non-canonical S)": (
        "3684891d7c641105dcb68709edbb3c51ed3a30837e44cd5f52ce6f287ce46d72",
        "d98ffb78f38ac62f408137847f295f8bad2af942e64779becc3818702c6e4395"
        "489940d1c2142cb752f9d5780aff6b15a994ff723b542f33056aa239139b9015",
        False, False,
    ),
    "S with the top bits set": (
        "3684891d7c641105dcb68709edbb3c51ed3a30837e44cd5f52ce6f287ce46d72",
        "d98ffb78f38ac62f408137847f295f8bad2af942e64779becc3818702c6e4395"
        "5bc54a74a8b1195f7c5cded52b058d00a994ff723b542f33056aa239139b90e5",
        False, False,
    ),
    "key is not a curve point": (
        "0200000000000000000000000000000000000000000000000000000000000000",
        "d98ffb78f38ac62f408137847f295f8bad2af942e64779becc3818702c6e4395"
        "5bc54a74a8b1195f7c5cded52b058d00a994ff723b542f33056aa239139b9005",
        False, False,
    ),
    "R is not a curve point": (
        "3684891d7c641105dcb68709edbb3c51ed3a30837e44cd5f52ce6f287ce46d72",
        "0200000000000000000000000000000000000000000000000000000000000000"
        "5bc54a74a8b1195f7c5cded52b058d00a994ff723b542f33056aa239139b9005",
        False, False,
    ),
    "honest signature, key with the sign bit flipped": (
        "3684891d7c641105dcb68709edbb3c51ed3a30837e44cd5f52ce6f287ce46df2",
        "d98ffb78f38ac62f408137847f295f8bad2af942e64779becc3818702c6e4395"
        "5bc54a74a8b1195f7c5cded52b058d00a994ff723b542f33056aa239139b9005",
        False, False,
    ),
}
NAMES = list(VECTORS)


def vector(name: str) -> tuple[bytes, bytes, bool, bool]:
    public, signature, sp_core, pynacl = VECTORS[name]
    return bytes.fromhex(public), bytes.fromhex(signature), sp_core, pynacl


def pynacl_accepts(public: bytes, signature: bytes, message: bytes = MESSAGE) -> bool:
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


@pytest.fixture(scope="module")
def harness() -> PinkHarness:
    return PinkHarness()


def test_the_committed_vectors_are_what_build_vectors_makes() -> None:
    built = build_vectors()
    assert list(built) == NAMES
    for name, (public, signature) in built.items():
        assert (public.hex(), signature.hex()) == VECTORS[name][:2], name
    # The arithmetic is RFC 8032's: the honest vector is PyNaCl's signature for SEED.
    public, signature = built["honest"]
    key = nacl.signing.SigningKey(SEED)
    assert (bytes(key.verify_key), key.sign(MESSAGE).signature) == (public, signature)
    assert recover_x(2, 0) is None and recover_x(2, 1) is None  # y = 2 is not on the curve
    assert mul(8, order8_point()) == IDENTITY and mul(4, order8_point()) != IDENTITY


@pytest.mark.parametrize("name", NAMES)
def test_expectations_are_ed25519_zebras_and_differ_from_pynacl_where_stated(name: str) -> None:
    public, signature, sp_core, pynacl = vector(name)
    assert ed25519_zebra.ed_verify(signature, MESSAGE, public) is sp_core
    assert pynacl_accepts(public, signature) is pynacl


def test_the_vectors_cover_both_agreement_and_divergence() -> None:
    outcomes = {(v[2], v[3]) for v in VECTORS.values()}
    assert outcomes == {(True, True), (True, False), (False, False)}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", MODES)
def test_pink_verify_answers_what_sp_core_answers(harness: PinkHarness, mode: ExecutionMode, name: str) -> None:
    public, signature, sp_core, _ = vector(name)
    args = bytes([ED25519]) + blob(public) + blob(MESSAGE) + blob(signature)
    out = harness.one(VERIFY, args, mode)
    assert (out.status, out.output) == (0, b"\x01" if sp_core else b"\x00")


@pytest.mark.parametrize("name", NAMES)
def test_signed_requests_follow_the_same_rules(name: str) -> None:
    """Client requests signed with ed25519 are judged by the same rules (crypto.signer)."""
    public, signature, sp_core, _ = vector(name)
    assert ed25519_verify(signature, MESSAGE, public) is sp_core
    assert verify_request(Scheme.ED25519, public, MESSAGE, signature) is sp_core


def test_a_changed_message_fails() -> None:
    public, signature, _, _ = vector("honest")
    assert ed25519_verify(signature, MESSAGE + b"!", public) is False
    assert verify_request(Scheme.ED25519, public, MESSAGE + b"!", signature) is False
    assert ed25519_verify(signature[:63], MESSAGE, public) is False  # wrong length: just invalid
