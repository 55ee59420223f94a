"""Receipt files: what ``phat query/tx --json`` (or ``--save FILE``) writes, and the checks
``phat verify-receipt FILE --chain WS --cluster ID`` makes on one, long after the answer.

A receipt file is the command's JSON result with the exact bytes the worker committed to
(``docs/rpc.md`` "Receipt files")::

    {"format": "phat-receipt/v1",
     "contract": "0x…", "message": "get",                # what was called
     "value": …, "output": …, "success": …, "reverted": …, "error": …, "events": […],
     "outcome": "0x<SCALE Outcome>",                     # the output the receipt's hash covers
     "receipt": {"scale": "0x<SCALE Receipt>", "worker": "5…", "block": N, …}}

:func:`verify_receipt_file` checks, in order: the signing worker is a live member of the
cluster on chain (registered, policy-passing, not revoked) → the receipt's signature by that
worker → ``blake2_256`` of the output in the file equals the receipt's output hash → the
readable fields agree with those bytes (``value``/``output`` only with the contract's metadata,
which decodes them). The first failure raises VerificationError (UntrustedWorker for the
membership) saying what is wrong. Must not: talk to workers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from phat_runtime.codec.messages import Outcome, Receipt
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import DecodeError
from phat_runtime.rpc.channel import VerificationError
from phat_runtime.rpc.cluster_directory import ClusterDirectory

FORMAT = "phat-receipt/v1"


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def receipt_fields(receipt: Receipt) -> dict[str, Any]:
    """The receipt as a file shows it: its bytes (``scale``) and their readable fields."""
    return {"scale": _hex(receipt.encode()), "worker": to_ss58(receipt.worker), "worker_hex": _hex(receipt.worker),
            "kind": receipt.kind.name, "block": receipt.block, "state_root": _hex(receipt.state_root),
            "request_hash": _hex(receipt.request_hash), "output_hash": _hex(receipt.output_hash),
            "time_ms": receipt.time_ms, "signature": _hex(receipt.signature)}


@dataclass
class ReceiptCheck:
    """What a receipt file proved: who signed which output at which block."""

    receipt: Receipt
    outcome: Outcome
    checked: list[str] = field(default_factory=list)  # what was verified, in order
    unchecked: list[str] = field(default_factory=list)  # what could not be, and why

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, "worker": to_ss58(self.receipt.worker), "block": self.receipt.block,
                "state_root": _hex(self.receipt.state_root), "output_hash": _hex(self.receipt.output_hash),
                "checked": self.checked, "unchecked": self.unchecked}


def load_receipt_file(text: str) -> tuple[dict[str, Any], Receipt, Outcome]:
    """(document, receipt, outcome) of a receipt file; VerificationError if it is not one."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"\"format\" is not {FORMAT!r}")
        receipt = Receipt.decode(bytes.fromhex(doc["receipt"]["scale"].removeprefix("0x")))
        outcome = Outcome.decode(bytes.fromhex(doc["outcome"].removeprefix("0x")))
    except (ValueError, KeyError, TypeError, AttributeError, DecodeError) as exc:
        raise VerificationError(f"not a receipt file ({exc}); write one with `phat query … --save FILE` "
                                "or `phat tx … --json`") from None
    return doc, receipt, outcome


def verify_receipt_file(text: str, directory: ClusterDirectory,
                        metadata: ContractMetadata | None = None) -> ReceiptCheck:
    doc, receipt, outcome = load_receipt_file(text)
    check = ReceiptCheck(receipt, outcome)
    directory.refresh()
    directory.check_trusted(receipt.worker)
    check.checked.append(f"worker {to_ss58(receipt.worker)} is a live member of the cluster "
                         f"(chain block {directory.membership.cursor})")
    if not receipt.signature_valid():
        raise VerificationError(f"the receipt's signature does not verify under worker {to_ss58(receipt.worker)}: "
                                "the receipt was altered")
    check.checked.append("the receipt's signature")
    if outcome.output_hash != receipt.output_hash:
        raise VerificationError(f"the output in the file hashes to {_hex(outcome.output_hash)}, the receipt "
                                f"signed {_hex(receipt.output_hash)}: the output was altered")
    check.checked.append("the output hash")
    _readable(doc, receipt, outcome, check, metadata)
    return check


def _readable(doc: dict[str, Any], receipt: Receipt, outcome: Outcome, check: ReceiptCheck,
              metadata: ContractMetadata | None) -> None:
    """The readable fields must say what the signed bytes say."""
    shown = {k: v for k, v in receipt_fields(receipt).items() if k != "scale"}
    expected: dict[str, Any] = {f"receipt.{k}": v for k, v in shown.items()}
    expected.update({"success": outcome.success, "reverted": outcome.reverted, "error": outcome.error_kind})
    given = {**{f"receipt.{k}": v for k, v in doc["receipt"].items()}, **doc}
    for name, value in expected.items():
        if name in given and given[name] != value:
            raise VerificationError(f"the file's {name!r} says {given[name]!r}, the signed bytes say {value!r}: "
                                    "the file was altered")
    if metadata is None:
        check.unchecked.append("value/output: pass --metadata BUNDLE to decode the signed output")
        return
    try:
        spec = metadata.message(str(doc["message"]))
        value = metadata.decode_return(spec, outcome.data) if outcome.error_kind is None else None
    except (KeyError, DecodeError) as exc:
        raise VerificationError(f"the signed output does not decode with this metadata: {exc}") from None
    value = json.loads(json.dumps(value, default=jsonable))
    if doc.get("value") != value:
        raise VerificationError(f"the file's value {doc.get('value')!r} is not the signed output {value!r}: "
                                "the file was altered")
    check.checked.append(f"the value, decoded with {metadata.name}'s metadata")


def jsonable(value: Any) -> Any:
    """As ``phat … --json`` prints values (``cli/common.py``)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
