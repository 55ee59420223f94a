"""Submitting protocol remarks: compose, sign with our own key object, submit, wait, explain.

Owns: building the extrinsic (one ``system.remark_with_event``, or ``utility.batch_all`` of
several), signing its payload with a :class:`ChainSigner` (the secret never enters
substrate-interface: it sees only the public key and the finished signature), submitting it
with ``author_submitAndWatchExtrinsic`` until finalized, and translating refusals into
:class:`SubmitError` / :class:`NoFunds` messages that say what to do. The caller
(:class:`~phat_runtime.chain.node.ChainNode`) translates network errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from phat_runtime.errors import ConfigError, NoFunds, SubmitError

SR25519 = 1  # substrate-interface KeypairType / MultiSignature variant


class ChainSigner(Protocol):
    """What signs an extrinsic: an sr25519 key — ``crypto.signer.Signer``, the worker's
    ``tee.WorkerIdentity`` or a substrate-interface ``Keypair``. Its public key is the account."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Inclusion:
    """Where a submitted extrinsic landed (already finalized)."""

    block_number: int
    block_hash: bytes
    extrinsic_index: int


def _check_signer(signer: ChainSigner) -> None:
    scheme = getattr(signer, "scheme", None)
    crypto = getattr(signer, "crypto_type", SR25519)
    if (scheme is not None and int(scheme) != SR25519) or crypto != SR25519:
        raise ConfigError("chain messages are signed with sr25519 keys; this signer is not one")
    if len(signer.public_key) != 32:
        raise ConfigError("the signer's public key must be 32 bytes")


def submit_remarks(api: Any, url: str, remarks: Sequence[bytes], signer: ChainSigner,
                   lock: AbstractContextManager[Any] | None = None) -> Inclusion:
    """One extrinsic carrying ``remarks`` in order, signed by ``signer``, finalized. ``lock``
    is held while the library composes and signs (not while waiting for the chain)."""
    from substrateinterface import Keypair
    from substrateinterface.exceptions import SubstrateRequestException

    _check_signer(signer)
    guard = lock if lock is not None else nullcontext()
    with guard:
        calls = [api.compose_call("System", "remark_with_event", {"remark": r}) for r in remarks]
        call = calls[0] if len(calls) == 1 else api.compose_call("Utility", "batch_all", {"calls": calls})
    account = Keypair(public_key=signer.public_key, crypto_type=SR25519, ss58_format=42)
    try:
        nonce = api.get_account_nonce(account.ss58_address) or 0
        with guard:
            payload = api.generate_signature_payload(call=call, era="00", nonce=nonce)
            signature = signer.sign(bytes(payload.data))
            extrinsic = api.create_signed_extrinsic(call, keypair=account, nonce=nonce, signature=signature)
        receipt = api.submit_extrinsic(extrinsic, wait_for_finalization=True)
    except SubstrateRequestException as exc:
        raise submit_error(exc, account.ss58_address, signer.public_key, url) from exc
    with guard:  # reading the receipt decodes the block's events
        if not receipt.is_success:
            raise SubmitError(f"the extrinsic was included in block {receipt.block_hash} but failed: "
                              f"{receipt.error_message}")
        number = api.get_block_number(receipt.block_hash)
        index = receipt.extrinsic_idx
    return Inclusion(number, bytes.fromhex(receipt.block_hash[2:]), index)


def submit_error(exc: Exception, address: str, public_key: bytes, url: str) -> SubmitError:
    """A node's refusal as an error that says what to do."""
    detail = exc.args[0] if exc.args else exc
    text = str(detail)
    who = f"account {address} (0x{public_key.hex()})"
    if "payment" in text or "Inability to pay" in text:
        return NoFunds(f"{who} has no funds to pay the transaction fee on {url}: fund it — the "
                       "devnet funds the dev accounts and the worker identities it is given; on "
                       "another chain, transfer some of its token to this account.")
    if "exhaustsResources" in text or "ExhaustsResources" in text or "too large" in text.lower():
        return SubmitError(f"the node at {url} refused the extrinsic from {who}: it does not fit "
                           f"in a block ({text}); submit fewer or smaller messages at once.")
    if "stale" in text or "outdated" in text.lower() or "future" in text:
        return SubmitError(f"the node at {url} refused the extrinsic from {who}: its nonce is "
                           f"not the next one ({text}); is another submission from this account "
                           "in flight? Retry when it has landed.")
    return SubmitError(f"the node at {url} refused the extrinsic from {who}: {text}")
