"""Dashboard sign-in: a deployer proves they hold their account's key by signing a one-time
challenge, and gets a short-lived cookie that shows the logs of the contracts they deployed.

The text signed names this worker and the challenge, one line without spaces::

    phat_runtime/dashboard-sign-in/v1:0x<worker identity, 32 bytes>:0x<challenge, 16 bytes>

and the bytes signed are that text wrapped as ``<Bytes>…</Bytes>`` — the convention of
polkadot.js ``signRaw`` and ``subkey sign``, so a wallet can sign it too. Wrapped this way the
bytes can never be a transaction, an RPC request (``phat_runtime/request/v1…``) or a receipt:
a sign-in signature authorises nothing else. ``phat keys sign-in TEXT`` signs only texts of
exactly this form (it is not a general signing oracle). sr25519 and ed25519 keys both work, as
for requests.

:class:`SignIns` keeps the challenges and sessions in memory (a restart signs everyone out):
a challenge lives 5 minutes and is consumed by the first attempt, right or wrong; a session
lives 15 minutes. Both tables are bounded (oldest evicted), so page loads cannot grow them.
Tokens are 32 random bytes; the cookies that carry them are ``HttpOnly; SameSite=Strict``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from phat_runtime.crypto.signer import Scheme, Signer, verify
from phat_runtime.worker.error_codes import RpcError

SIGN_IN_DOMAIN = "phat_runtime/dashboard-sign-in/v1"
CHALLENGE_LEN = 16
CHALLENGE_LIFETIME_S = 300
SESSION_LIFETIME_S = 900
MAX_CHALLENGES = 256
MAX_SESSIONS = 64

_TEXT = re.compile(r"phat_runtime/dashboard-sign-in/v1:0x([0-9a-f]{64}):0x([0-9a-f]{32})")


def sign_in_text(worker: bytes, challenge: bytes) -> str:
    return f"{SIGN_IN_DOMAIN}:0x{worker.hex()}:0x{challenge.hex()}"


def parse_sign_in_text(text: str) -> tuple[bytes, bytes]:
    """(worker identity, challenge) of a sign-in text; ValueError for anything else."""
    match = _TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a dashboard sign-in text: expected {SIGN_IN_DOMAIN}:0x<64 hex>:0x<32 hex> "
                         "exactly as the dashboard shows it")
    return bytes.fromhex(match[1]), bytes.fromhex(match[2])


def signed_bytes(text: str) -> bytes:
    """What the key signs: the text wrapped as ``<Bytes>…</Bytes>``."""
    return b"<Bytes>" + text.strip().encode() + b"</Bytes>"


def sign_sign_in(signer: Signer, text: str) -> bytes:
    """Sign a dashboard sign-in text (refuses any other text)."""
    parse_sign_in_text(text)
    return signer.sign(signed_bytes(text))


def verify_sign_in(account: bytes, text: str, signature: bytes) -> bool:
    """Whether ``signature`` over ``text`` verifies for ``account`` (sr25519 or ed25519)."""
    message = signed_bytes(text)
    return any(verify(scheme, account, message, signature) for scheme in (Scheme.SR25519, Scheme.ED25519))


@dataclass(frozen=True)
class DeployerSession:
    account: bytes
    expires_at: float  # on the table's clock

    def seconds_left(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


class SignIns:
    """Challenges and signed-in sessions of one worker's dashboard. Thread-safe."""

    def __init__(self, worker: bytes, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.worker = worker
        self.clock = clock
        self._lock = threading.Lock()
        self._challenges: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._sessions: OrderedDict[str, DeployerSession] = OrderedDict()

    def new_challenge(self) -> str:
        """A new challenge; returns its token (the cookie value)."""
        token = secrets.token_hex(32)
        with self._lock:
            self._challenges[token] = (secrets.token_bytes(CHALLENGE_LEN), self.clock() + CHALLENGE_LIFETIME_S)
            while len(self._challenges) > MAX_CHALLENGES:
                self._challenges.popitem(last=False)
        return token

    def pending(self, token: str | None) -> str | None:
        """The text to sign for a live challenge token, or None."""
        with self._lock:
            entry = self._challenges.get(token or "")
            if entry is None or entry[1] <= self.clock():
                return None
            return sign_in_text(self.worker, entry[0])

    def complete(self, token: str | None, account: bytes, signature: bytes) -> str:
        """Check a signed challenge (consuming it, right or wrong); the new session's token."""
        with self._lock:
            entry = self._challenges.pop(token or "", None)
        if entry is None or entry[1] <= self.clock():
            raise RpcError("expired", "the sign-in challenge expired or was already used: "
                           "start the sign-in again and sign the new text")
        if not verify_sign_in(account, sign_in_text(self.worker, entry[0]), signature):
            raise RpcError("bad_signature", "the signature does not verify for that account over this "
                           "challenge: sign the text shown with the deployer's key (phat keys sign-in)")
        session = secrets.token_hex(32)
        with self._lock:
            self._sessions[session] = DeployerSession(account, self.clock() + SESSION_LIFETIME_S)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def session(self, token: str | None) -> DeployerSession | None:
        with self._lock:
            found = self._sessions.get(token or "")
            if found is not None and found.expires_at <= self.clock():
                del self._sessions[token or ""]
                return None
            return found

    def sign_out(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)
