"""Python client of a worker: attest it, encrypt + sign requests, verify receipts, decode.

Importable without wasmtime (it never touches the runtime)::

    from phat_runtime.rpc.client import WorkerClient, development_policy
    from phat_runtime.crypto.signer import Signer

    client = WorkerClient("http://127.0.0.1:8000", policy=development_policy())
    alice = Signer.dev("alice")
    flipper = client.contract("0x…", "flipper.contract")
    result = flipper.query("get", signer=alice)   # verified receipt, decoded value
    result.output                                  # True

Every response is checked before it is returned: the worker's attestation (quote bound to its
identity and ECDH keys, accepted by the policy), the receipt's signature by that identity, and
that the receipt commits to *this* request and *this* output. Any mismatch raises
:class:`VerificationError`.

Every failure is a :class:`~phat_runtime.errors.PhatError` with a one-line message:
:class:`WorkerUnreachable` (no connection; :class:`WorkerTimeout` when the worker did not answer
in time), :class:`WorkerError` (the worker refused; ``code`` from docs/rpc.md) and
:class:`VerificationError` (do not trust the response).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from phat_runtime.codec.messages import Outcome, Receipt, RequestKind, SignedRequest
from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent
from phat_runtime.crypto.e2e import EnvelopeError, new_x25519, shared_key
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import PhatError
from phat_runtime.rpc.bodies import BodyError, RequestEnvelope, open_response
from phat_runtime.tee.policy import Policy
from phat_runtime.tee.verdict import Verdict
from phat_runtime.tee.verify import verify_worker_quote

#: How long a request stays valid by default.
DEFAULT_DEADLINE_S = 60


class VerificationError(PhatError):
    """The worker's attestation or a receipt did not verify: do not trust the response."""


class WorkerError(PhatError):
    """The worker refused the request; ``code`` is one of docs/rpc.md's error codes."""

    def __init__(self, code: str, message: str, status: int) -> None:
        # Execution errors already start with their kind ("DuplicateContract: ..."): say it once.
        super().__init__(message if message.startswith(f"{code}:") else f"{code}: {message}")
        self.code = code
        self.status = status


class WorkerUnreachable(PhatError):
    """No HTTP exchange with the worker was possible (refused, reset, DNS, TLS)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the worker at {url} ({detail}); is `phat serve` running there?")
        self.url = url


class WorkerTimeout(WorkerUnreachable):
    """The worker accepted the connection but did not answer in time. A transaction may still
    be included: query its effect before sending it again."""

    def __init__(self, url: str, timeout_s: float | None) -> None:
        PhatError.__init__(self, f"the worker at {url} did not answer within {timeout_s} s; it may be "
                           "overloaded (a transaction sent may still be included)")
        self.url = url


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


@dataclass(frozen=True)
class Verified:
    """A response whose receipt verified against the attested worker."""

    request: SignedRequest
    outcome: Outcome
    receipt: Receipt


@dataclass
class DecodedResult:
    label: str
    value: Any
    verified: Verified
    events: list[DecodedEvent | Any]

    @property
    def output(self) -> Any:
        if isinstance(self.value, dict) and len(self.value) == 1 and "Ok" in self.value:
            return self.value["Ok"]
        return self.value

    @property
    def success(self) -> bool:
        return self.verified.outcome.success


class WorkerClient:
    def __init__(self, url: str, *, policy: Policy | None = None, collateral: str | None = None,
                 timeout_s: float = 30.0, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.policy = policy if policy is not None else Policy()
        self.collateral = collateral
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout_s, trust_env=False)
        self._info: WorkerInfo | None = None
        self.verdict: Verdict | None = None

    def close(self) -> None:
        self.http.close()

    # --- attestation ----------------------------------------------------------------------------
    def info(self, *, refresh: bool = False) -> WorkerInfo:
        if self._info is None or refresh:
            raw = self._get("/v1/info")
            try:
                self._info = WorkerInfo(
                    _hex(raw["identity"]), _hex(raw["ecdh"]), str(raw["platform"]), _hex(raw["quote"]),
                    int(raw["block"]), _hex(raw["state_root"]), raw,
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise WorkerError("bad_response", f"/v1/info is not a worker's info ({exc!r})", 200) from None
        return self._info

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

    # --- requests -------------------------------------------------------------------------------
    def request(self, kind: RequestKind, signer: Signer, *, contract: bytes = bytes(32),
                code_hash: bytes = bytes(32), payload: bytes = b"", salt: bytes = b"", value: int = 0,
                gas_limit: int = 0, deadline_s: float = DEFAULT_DEADLINE_S) -> Verified:
        if self.verdict is None:
            self.attest()
        info = self.info()
        request = SignedRequest(
            kind, info.identity, contract, code_hash, payload, salt, value, gas_limit, os.urandom(32),
            int((time.time() + deadline_s) * 1000), signer.scheme, signer.public_key,
        ).signed_by(signer)
        client_sk, client_pk = new_x25519()
        key = shared_key(client_sk, info.ecdh, client_pk, info.ecdh)
        envelope = RequestEnvelope.make(key, client_pk, request.encode())
        path = "/v1/query" if kind is RequestKind.QUERY else "/v1/tx"
        body = self._post(path, envelope.to_json())
        try:
            outcome, receipt = open_response(key, body)
        except (EnvelopeError, BodyError, ValueError) as exc:
            raise VerificationError(f"the response does not open or decode: {exc}") from None
        check_receipt(request, outcome, receipt, info.identity)
        return Verified(request, outcome, receipt)

    def query(self, contract: bytes, payload: bytes, signer: Signer, **kw: Any) -> Verified:
        return self.request(RequestKind.QUERY, signer, contract=contract, payload=payload, **kw)

    def upload(self, wasm: bytes, signer: Signer, metadata_json: bytes = b"") -> Verified:
        from phat_runtime.codec.scale import Writer

        payload = Writer().blob(wasm).blob(metadata_json).finish()
        return self.request(RequestKind.UPLOAD, signer, payload=payload)

    def instantiate(self, code_hash: bytes, payload: bytes, signer: Signer, *, salt: bytes = b"",
                    value: int = 0) -> Verified:
        return self.request(RequestKind.INSTANTIATE, signer, code_hash=code_hash, payload=payload,
                            salt=salt, value=value)

    def call(self, contract: bytes, payload: bytes, signer: Signer, *, value: int = 0) -> Verified:
        return self.request(RequestKind.CALL, signer, contract=contract, payload=payload, value=value)

    def contract_info(self, address: bytes) -> dict[str, Any]:
        return self._get(f"/v1/contracts/0x{address.hex()}")

    def logs(self, address: bytes, signer: Signer, *, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        ts = int(time.time() * 1000)
        signature = signer.sign(b"phat_runtime/logs/v1" + address + ts.to_bytes(8, "little"))
        params = {"origin": signer.public_key.hex(), "timestamp": ts, "signature": signature.hex(),
                  "since": since, "limit": limit, "scheme": int(signer.scheme)}
        records: list[dict[str, Any]] = self._get(f"/v1/contracts/0x{address.hex()}/logs", params)["records"]
        return records

    # --- metadata-aware ---------------------------------------------------------------------------
    def contract(self, address: bytes | str, metadata: ContractMetadata | str | os.PathLike[str]) -> RemoteContract:
        meta = metadata if isinstance(metadata, ContractMetadata) else ContractMetadata.load(Path(metadata))
        addr = address if isinstance(address, bytes) else _account(address)
        return RemoteContract(self, addr, meta)

    def deploy(self, metadata: ContractMetadata | str | os.PathLike[str], constructor: str,
               args: Any = None, *, signer: Signer, salt: bytes = b"", value: int = 0) -> RemoteContract:
        meta = metadata if isinstance(metadata, ContractMetadata) else ContractMetadata.load(Path(metadata))
        if meta.wasm is None:
            raise PhatError("the metadata carries no code; pass the .contract bundle")
        upload = self.upload(meta.wasm, signer, _metadata_json(metadata))
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
    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._check(self._send("GET", path, params=params))

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self._send("POST", path, json=body))

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


def check_receipt(request: SignedRequest, outcome: Outcome, receipt: Receipt, identity: bytes) -> None:
    """Raise VerificationError unless ``receipt`` is the attested worker's statement about
    exactly this request and this outcome."""
    problems = []
    if receipt.worker != identity:
        problems.append("signed by another key than the attested worker identity")
    if not receipt.signature_valid():
        problems.append("receipt signature does not verify")
    if receipt.request_hash != request.request_hash:
        problems.append("receipt is for another request")
    if receipt.output_hash != outcome.output_hash:
        problems.append("output does not match the receipt's output hash")
    if receipt.kind is not request.kind:
        problems.append("receipt kind differs from the request")
    if problems:
        raise VerificationError("; ".join(problems))


class RemoteContract:
    """A contract on a worker, called by label through its metadata."""

    def __init__(self, client: WorkerClient, address: bytes, metadata: ContractMetadata) -> None:
        self.client = client
        self.address = address
        self.metadata = metadata

    def query(self, label: str, args: Any = None, *, signer: Signer, value: int = 0) -> DecodedResult:
        spec = self.metadata.message(label)
        verified = self.client.query(self.address, self.metadata.encode_message(label, args), signer, value=value)
        return self._decode(spec, verified)

    def transact(self, label: str, args: Any = None, *, signer: Signer, value: int = 0) -> DecodedResult:
        spec = self.metadata.message(label)
        verified = self.client.call(self.address, self.metadata.encode_message(label, args), signer, value=value)
        return self._decode(spec, verified)

    def _decode(self, spec: Any, verified: Verified) -> DecodedResult:
        outcome = verified.outcome
        value = None
        if outcome.error_kind is None:
            value = self.metadata.decode_return(spec, outcome.data)
        events: list[DecodedEvent | Any] = []
        for e in outcome.events:
            try:
                events.append(self.metadata.decode_event(e.data, e.topics) if e.contract == self.address else e)
            except PhatError:
                events.append(e)
        return DecodedResult(spec.label, value, verified, events)


def _metadata_json(source: ContractMetadata | str | os.PathLike[str]) -> bytes:
    """The metadata document without its code, to upload beside the wasm (lets the worker
    check arguments and serve the metadata); empty for an in-memory ContractMetadata."""
    if isinstance(source, ContractMetadata):
        return b""
    doc = json.loads(Path(source).read_text())
    if isinstance(doc.get("source"), dict):
        doc["source"].pop("wasm", None)
    return json.dumps(doc, separators=(",", ":")).encode()


def _transport_detail(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _hex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected a 0x-hex string, got {type(value).__name__}")
    return bytes.fromhex(value.removeprefix("0x"))


def _account(text: str) -> bytes:
    if text.startswith("0x"):
        return bytes.fromhex(text[2:])
    from scalecodec.utils.ss58 import ss58_decode

    return bytes.fromhex(ss58_decode(text))
