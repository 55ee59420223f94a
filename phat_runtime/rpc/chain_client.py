"""Deploy and transact through a chain; read each outcome, with its receipt, from a worker.

In chain mode a transaction is a chain message: the client builds it (a Call's payload sealed
to the cluster's ECDH key, so chain observers cannot read it), signs and submits the extrinsic,
waits until it is finalized, then asks a worker of the cluster for the outcome (a RESULT
request, answered to the sender only) and verifies the worker's receipt — which binds the hash
of the very remark that carried the transaction, the output, the chain block and the state root.
Queries go straight to the worker as in standalone mode. :class:`ChainTransactions` is the
part that does not depend on which worker answers; ``rpc/cluster_client.py`` builds the client of
a whole cluster (any live member, with failover) on it.

    client = ChainClient("ws://127.0.0.1:9944", cluster, WorkerClient(url, policy=...))
    flipper = client.deploy("flipper.contract", "new", [True], signer=alice)
    flipper.transact("flip", signer=alice)     # through the chain; block = the chain block
    flipper.query("get", signer=alice)          # straight to the worker
"""

from __future__ import annotations

import os
import time
from typing import Any

from phat_runtime.chain import (
    Call,
    CallPayload,
    ChainNode,
    Inclusion,
    Instantiate,
    Message,
    UploadCode,
    seal_call_payload,
)
from phat_runtime.codec.messages import RequestKind, encode_result_query
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.signer import Signer
from phat_runtime.errors import DecodeError, PhatError
from phat_runtime.rpc.bodies import decode_result
from phat_runtime.rpc.channel import VerificationError, Verified, WorkerError, check_receipt
from phat_runtime.rpc.client import WorkerClient
from phat_runtime.rpc.remote import RemoteContract, load_metadata, metadata_json

#: How long to wait for a worker to apply a finalized transaction.
DEFAULT_APPLY_TIMEOUT_S = 120


class ChainTransactions:
    """Transactions through the chain at ``chain_url`` for ``cluster`` — what :class:`ChainClient`
    (one worker) and :class:`~phat_runtime.rpc.cluster_client.ClusterClient` (any live member)
    share. Subclasses say where the Call key comes from and how an outcome is read back."""

    def __init__(self, chain_url: str, cluster: bytes, *, apply_timeout_s: float = DEFAULT_APPLY_TIMEOUT_S) -> None:
        if len(cluster) != 32:
            raise PhatError("a cluster id is 32 bytes (0x-hex)")
        self.node = ChainNode(chain_url)
        self.cluster = cluster
        self.apply_timeout_s = apply_timeout_s

    def close(self) -> None:
        self.node.close()

    # --- what subclasses provide ---------------------------------------------------------------------
    def call_key(self) -> tuple[int, bytes]:
        """(epoch, cluster ECDH public key) a Call payload is sealed to."""
        raise NotImplementedError

    def read_outcome(self, remark: bytes, inclusion: Inclusion, kind: RequestKind, signer: Signer) -> Verified:
        """The verified outcome of the transaction ``remark`` included at ``inclusion``."""
        raise NotImplementedError

    def query(self, contract: bytes, payload: bytes, signer: Signer, **kw: Any) -> Verified:
        raise NotImplementedError

    def contract_info(self, address: bytes) -> dict[str, Any]:
        raise NotImplementedError

    # --- transactions ------------------------------------------------------------------------------
    def upload(self, wasm: bytes, signer: Signer, metadata_json: bytes = b"") -> Verified:
        return self._through_chain(UploadCode(self.cluster, wasm, metadata_json or None),
                                   RequestKind.UPLOAD, signer)

    def instantiate(self, code_hash: bytes, payload: bytes, signer: Signer, *, salt: bytes = b"",
                    value: int = 0, gas_limit: int = 0) -> Verified:
        return self._through_chain(Instantiate(self.cluster, code_hash, salt, payload, value, gas_limit),
                                   RequestKind.INSTANTIATE, signer)

    def call(self, contract: bytes, payload: bytes, signer: Signer, *, value: int = 0,
             gas_limit: int = 0) -> Verified:
        epoch, ecdh = self.call_key()
        sealed = seal_call_payload(CallPayload(payload, value), cluster_ecdh_public=ecdh,
                                   cluster=self.cluster, contract=contract, epoch=epoch,
                                   sender=signer.public_key)
        return self._through_chain(Call(self.cluster, contract, epoch, sealed, gas_limit),
                                   RequestKind.CALL, signer)

    # --- metadata-aware ------------------------------------------------------------------------------
    def contract(self, address: bytes | str, metadata: ContractMetadata | str | os.PathLike[str]) -> RemoteContract:
        from phat_runtime.rpc.remote import account

        addr = address if isinstance(address, bytes) else account(address)
        return RemoteContract(self, addr, load_metadata(metadata))  # type: ignore[arg-type]

    def deploy(self, metadata: ContractMetadata | str | os.PathLike[str], constructor: str,
               args: Any = None, *, signer: Signer, salt: bytes = b"", value: int = 0) -> RemoteContract:
        meta = load_metadata(metadata)
        if meta.wasm is None:
            raise PhatError("the metadata carries no code; pass the .contract bundle")
        upload = self.upload(meta.wasm, signer, metadata_json(metadata))
        if upload.outcome.error_kind is not None or upload.outcome.code_hash is None:
            raise WorkerError(upload.outcome.error_kind or "InvalidCode", upload.outcome.error_message or "", 422)
        made = self.instantiate(upload.outcome.code_hash, meta.encode_constructor(constructor, args), signer,
                                salt=salt, value=value)
        if not made.outcome.success or made.outcome.contract is None:
            raise WorkerError(made.outcome.error_kind or "ContractReverted",
                              made.outcome.error_message or f"constructor reverted: 0x{made.outcome.data.hex()}", 422)
        return RemoteContract(self, made.outcome.contract, meta)  # type: ignore[arg-type]

    # --- plumbing ------------------------------------------------------------------------------------
    def _through_chain(self, message: Message, kind: RequestKind, signer: Signer) -> Verified:
        remark = message.encode()
        inclusion = self.node.submit([remark], signer)
        return self.read_outcome(remark, inclusion, kind, signer)


class ChainClient(ChainTransactions):
    """Transactions through the chain at ``chain_url`` for ``cluster``; outcomes from ``worker``."""

    def __init__(self, chain_url: str, cluster: bytes, worker: WorkerClient, *,
                 apply_timeout_s: float = DEFAULT_APPLY_TIMEOUT_S) -> None:
        super().__init__(chain_url, cluster, apply_timeout_s=apply_timeout_s)
        self.worker = worker

    def call_key(self) -> tuple[int, bytes]:
        info = self.worker.info(refresh=True).raw  # the key epoch changes when the cluster rotates
        if info.get("mode") != "chain" or info.get("cluster") != "0x" + self.cluster.hex():
            raise PhatError(f"the worker at {self.worker.url} does not serve cluster 0x{self.cluster.hex()} "
                            "on a chain: pass a worker of that cluster")
        return int(info["cluster_epoch"]), bytes.fromhex(info["cluster_ecdh"][2:])

    def query(self, contract: bytes, payload: bytes, signer: Signer, **kw: Any) -> Verified:
        """Queries go straight to the worker."""
        return self.worker.query(contract, payload, signer, **kw)

    def contract_info(self, address: bytes) -> dict[str, Any]:
        return self.worker.contract_info(address)

    def read_outcome(self, remark: bytes, inclusion: Inclusion, kind: RequestKind, signer: Signer) -> Verified:
        deadline = time.monotonic() + self.apply_timeout_s
        while True:
            try:
                return read_outcome_from(self.worker, remark, inclusion, kind, signer)
            except WorkerError as exc:
                if exc.code != "not_applied" or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def read_outcome_from(worker: WorkerClient, remark: bytes, inclusion: Inclusion, kind: RequestKind,
                      signer: Signer) -> Verified:
    """Ask ``worker`` once for the outcome of the transaction ``remark`` (a RESULT request) and
    verify the receipt binds that remark, its kind and its chain block. WorkerError
    ``not_applied`` if the worker has not applied the block yet."""
    where = encode_result_query(inclusion.block_number, inclusion.extrinsic_index, 0)
    request = worker.sign(RequestKind.RESULT, signer, payload=where)
    prepared, answer = worker.send(request)
    try:
        outcome, receipt = decode_result(prepared.open(answer))
    except (DecodeError, ValueError) as exc:
        raise VerificationError(f"the result does not decode: {exc}") from None
    check_receipt(request, outcome, receipt, worker.info().identity, request_hash=blake2_256(remark), kind=kind)
    if receipt.block != inclusion.block_number:
        raise VerificationError(f"the receipt names block {receipt.block}, the transaction is in "
                                f"block {inclusion.block_number}")
    return Verified(request, outcome, receipt)
