"""Python client of a worker: attest it, open an encrypted session, sign requests, verify
receipts, decode.

Importable without wasmtime (it never touches the runtime)::

    from phat_runtime.rpc.client import WorkerClient, development_policy
    from phat_runtime.crypto.signer import Signer

    client = WorkerClient("http://127.0.0.1:8000", policy=development_policy())
    alice = Signer.dev("alice")
    flipper = client.contract("0x…", "flipper.contract")
    result = flipper.query("get", signer=alice)   # verified receipt, decoded value
    result.output                                  # True

Before anything is sent the worker's attestation is verified (quote bound to its identity and
ECDH keys, accepted by the policy), and a session is opened only with a worker that proves it
holds that ECDH key. Every answer is checked before it is returned: it opens under the
session's key for exactly this request, the receipt is signed by the attested identity, and it
commits to *this* request and *this* output. Any mismatch raises :class:`VerificationError`.

Every failure is a :class:`~phat_runtime.errors.PhatError` with a one-line message:
:class:`WorkerUnreachable` (no connection; :class:`WorkerTimeout` when the worker did not answer
in time), :class:`WorkerError` (the worker refused; ``code`` from docs/rpc.md) and
:class:`VerificationError` (do not trust the response).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from phat_runtime.codec.messages import RequestKind, SignedRequest, encode_logs_query
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.codec.scale import Writer
from phat_runtime.crypto.e2e import new_x25519
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import PhatError
from phat_runtime.rpc import bodies
from phat_runtime.rpc.bodies import BodyError, Route
from phat_runtime.rpc.channel import (
    ClientSession,
    Prepared,
    VerificationError,
    Verified,
    WorkerError,
    WorkerTimeout,
    WorkerUnreachable,
    check_receipt,
)
from phat_runtime.rpc.remote import RemoteContract, account, load_metadata, metadata_json
from phat_runtime.tee.policy import Policy
from phat_runtime.tee.verdict import Verdict
from phat_runtime.tee.verify import verify_worker_quote

__all__ = [
    "Prepared",
    "RemoteContract",
    "VerificationError",
    "Verified",
    "WorkerClient",
    "WorkerError",
    "WorkerInfo",
    "WorkerTimeout",
    "WorkerUnreachable",
    "check_receipt",
    "development_policy",
]

#: How long a request stays valid by default.
DEFAULT_DEADLINE_S = 60
_ROUTE_OF = {RequestKind.QUERY: Route.QUERY, RequestKind.LOGS: Route.LOGS, RequestKind.RESULT: Route.RESULT}


def development_policy() -> Policy:
    """Accept the simulated platform (development only) and real SGX/TDX with any TCB status."""
    return Policy.from_dict({"platforms": ["simulated", "sgx", "tdx"],
                             "tcb_statuses": ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                                              "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                                              "OutOfDateConfigurationNeeded"],
                             "advisories": "*"})


@dataclass(frozen=True)
class WorkerInfo:
    identity: bytes
    ecdh: bytes
    platform: str
    quote: bytes
    block: int
    state_root: bytes
    raw: dict[str, Any]


class WorkerClient:
    def __init__(self, url: str, *, policy: Policy | None = None, collateral: str | None = None,
                 timeout_s: float = 30.0, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.policy = policy if policy is not None else Policy()
        self.collateral = collateral
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout_s, trust_env=False)
        self._info: WorkerInfo | None = None
        self.verdict: Verdict | None = None
        self._session: ClientSession | None = None
        self._session_lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    # --- attestation and session -----------------------------------------------------------------
    def info(self, *, refresh: bool = False) -> WorkerInfo:
        if self._info is None or refresh:
            raw = self._check(self._send("GET", "/v1/info"))
            try:
                self._info = WorkerInfo(
                    _hex(raw["identity"]), _hex(raw["ecdh"]), str(raw["platform"]), _hex(raw["quote"]),
                    int(raw["block"]), _hex(raw["state_root"]), raw,
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise WorkerError("bad_response", f"/v1/info is not a worker's info ({exc!r})", 200) from None
        return self._info

    def applied_block(self) -> int:
        """The chain block of the worker's state now (``block`` in /v1/info, read afresh). Not
        signed: for choosing a worker; an answer's own block is in its signed receipt."""
        raw = self._check(self._send("GET", "/v1/info"))
        try:
            return int(raw["block"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkerError("bad_response", f"/v1/info is not a worker's info ({exc!r})", 200) from None

    def attest(self, *, at: int | None = None) -> Verdict:
        """Verify the worker's quote binds its identity and ECDH keys and passes the policy."""
        info = self.info()
        verdict = verify_worker_quote(info.quote, self.collateral, identity_pk=info.identity,
                                      ecdh_pk=info.ecdh, at=at or int(time.time()), policy=self.policy)
        if not verdict.ok:
            reasons = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failures)
            raise VerificationError(f"worker attestation failed: {reasons}")
        self.verdict = verdict
        return verdict

    def open_session(self) -> ClientSession:
        """A new encrypted session with the attested worker (one X25519 agreement)."""
        if self.verdict is None:
            self.attest()
        private, public = new_x25519()
        welcome = self._post_bytes("/v2/session", bodies.encode_hello(public))
        return ClientSession.from_welcome(private, public, self.info().ecdh, welcome)

    def session(self) -> ClientSession:
        """The client's current session, opened on first use and renewed before it expires."""
        with self._session_lock:
            if self._session is None or self._session.stale:
                self._session = self.open_session()
            return self._session

    # --- requests -------------------------------------------------------------------------------
    def sign(self, kind: RequestKind, signer: Signer, *, contract: bytes = bytes(32),
             code_hash: bytes = bytes(32), payload: bytes = b"", salt: bytes = b"", value: int = 0,
             gas_limit: int = 0, deadline_s: float = DEFAULT_DEADLINE_S) -> SignedRequest:
        """A request to the attested worker, with a fresh nonce, signed by ``signer``."""
        if self.verdict is None:
            self.attest()
        return SignedRequest(
            kind, self.info().identity, contract, code_hash, payload, salt, value, gas_limit, os.urandom(32),
            int((time.time() + deadline_s) * 1000), signer.scheme, signer.public_key,
        ).signed_by(signer)

    def prepare(self, request: SignedRequest, session: ClientSession | None = None) -> Prepared:
        """``request`` sealed for its route in ``session`` (default: the client's session)."""
        route = _ROUTE_OF.get(request.kind, Route.TX)
        return Prepared.seal(route, request, session or self.session(), self.info().identity)

    def prepare_queries(self, contract: bytes, payload: bytes, signer: Signer, *, count: int,
                        session: ClientSession | None = None, deadline_s: float = 600) -> list[Prepared]:
        """``count`` signed queries sealed in one session in counter order (for load generators:
        send them in order, then :meth:`Prepared.finish` each answer)."""
        session = session or self.open_session()
        return [self.prepare(self.sign(RequestKind.QUERY, signer, contract=contract, payload=payload,
                                       deadline_s=deadline_s), session) for _ in range(count)]

    def send(self, request: SignedRequest) -> tuple[Prepared, bytes]:
        """Seal and send ``request``; (prepared, raw answer). If the worker no longer knows the
        session (expired, evicted, restarted) it did not open the request: send it again in a
        new session, once."""
        for attempt in (1, 2):
            prepared = self.prepare(request)
            try:
                return prepared, self._post_bytes(prepared.path, prepared.body)
            except WorkerError as exc:
                if exc.code != "unknown_session" or attempt == 2:
                    raise
                with self._session_lock:
                    if self._session is prepared.session:
                        self._session = None
        raise AssertionError("unreachable")

    def request(self, kind: RequestKind, signer: Signer, **fields: Any) -> Verified:
        prepared, answer = self.send(self.sign(kind, signer, **fields))
        return prepared.finish(answer)

    def query(self, contract: bytes, payload: bytes, signer: Signer, **kw: Any) -> Verified:
        return self.request(RequestKind.QUERY, signer, contract=contract, payload=payload, **kw)

    def upload(self, wasm: bytes, signer: Signer, metadata_json: bytes = b"") -> Verified:
        payload = Writer().blob(wasm).blob(metadata_json).finish()
        return self.request(RequestKind.UPLOAD, signer, payload=payload)

    def instantiate(self, code_hash: bytes, payload: bytes, signer: Signer, *, salt: bytes = b"",
                    value: int = 0) -> Verified:
        return self.request(RequestKind.INSTANTIATE, signer, code_hash=code_hash, payload=payload,
                            salt=salt, value=value)

    def call(self, contract: bytes, payload: bytes, signer: Signer, *, value: int = 0,
             gas_limit: int = 0) -> Verified:
        return self.request(RequestKind.CALL, signer, contract=contract, payload=payload, value=value,
                            gas_limit=gas_limit)

    def contract_info(self, address: bytes) -> dict[str, Any]:
        info: dict[str, Any] = self._check(self._send("GET", f"/v1/contracts/0x{address.hex()}"))
        return info

    def logs(self, address: bytes, signer: Signer, *, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The contract's log records after sequence ``since`` — the deployer's signed, one-shot,
        encrypted read."""
        request = self.sign(RequestKind.LOGS, signer, contract=address, payload=encode_logs_query(since, limit))
        prepared, answer = self.send(request)
        try:
            return bodies.decode_log_records(prepared.open(answer))
        except BodyError as exc:
            raise VerificationError(f"the log records do not decode: {exc}") from None

    # --- metadata-aware ---------------------------------------------------------------------------
    def contract(self, address: bytes | str, metadata: ContractMetadata | str | os.PathLike[str]) -> RemoteContract:
        addr = address if isinstance(address, bytes) else account(address)
        return RemoteContract(self, addr, load_metadata(metadata))

    def deploy(self, metadata: ContractMetadata | str | os.PathLike[str], constructor: str,
               args: Any = None, *, signer: Signer, salt: bytes = b"", value: int = 0) -> RemoteContract:
        meta = load_metadata(metadata)
        if meta.wasm is None:
            raise PhatError("the metadata carries no code; pass the .contract bundle")
        upload = self.upload(meta.wasm, signer, metadata_json(metadata))
        if upload.outcome.error_kind is not None:
            raise WorkerError(upload.outcome.error_kind, upload.outcome.error_message or "", 422)
        assert upload.outcome.code_hash is not None
        made = self.instantiate(upload.outcome.code_hash, meta.encode_constructor(constructor, args), signer,
                                salt=salt, value=value)
        if not made.outcome.success or made.outcome.contract is None:
            raise WorkerError(made.outcome.error_kind or "ContractReverted",
                              made.outcome.error_message or f"constructor reverted: 0x{made.outcome.data.hex()}", 422)
        return RemoteContract(self, made.outcome.contract, meta)

    # --- plumbing ---------------------------------------------------------------------------------
    def _post_bytes(self, path: str, body: bytes) -> bytes:
        response = self._send("POST", path, content=body, headers={"content-type": bodies.CONTENT_TYPE})
        if response.status_code != 200:
            self._check(response)  # raises the worker's error
            raise WorkerError("bad_response", f"HTTP {response.status_code} from {path}", response.status_code)
        return response.content

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One HTTP exchange; transport failures become WorkerUnreachable / WorkerTimeout."""
        try:
            return self.http.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise WorkerUnreachable(self.url, "connect timed out") from exc
            raise WorkerTimeout(self.url, self.http.timeout.read) from exc
        except httpx.TransportError as exc:
            raise WorkerUnreachable(self.url, _transport_detail(exc)) from exc

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise WorkerError("bad_response", f"HTTP {response.status_code}, body is not JSON", response.status_code) from None
        if response.status_code >= 400:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise WorkerError(err.get("code", "http_error"), err.get("message", response.text), response.status_code)
        return body


def _transport_detail(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _hex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected a 0x-hex string, got {type(value).__name__}")
    return bytes.fromhex(value.removeprefix("0x"))
