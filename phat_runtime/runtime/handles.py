"""Handles on contracts for the metadata-aware API: :class:`Contract` (call messages by label)
and :class:`CallResult` (the decoded outcome next to the raw one). Built by
:class:`~phat_runtime.runtime.local.LocalCluster`, which they call back into.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import ExecutionError, MetadataError
from phat_runtime.runtime.cluster import ExecResult
from phat_runtime.runtime.execution import ContractEvent
from phat_runtime.types import AccountId, ExecutionMode

if TYPE_CHECKING:
    from phat_runtime.runtime.local import LocalCluster

#: Tag of an ink! 4/5 ``MessageResult`` / ``ConstructorResult``: Ok = 0, Err(LangError) = 1.
_LANG_ERR = 1

Account = str | bytes
Args = Mapping[str, Any] | Sequence[Any] | None


@dataclass
class CallResult:
    """Decoded outcome of one message or constructor, with the raw result beside it."""

    label: str
    value: Any  # the decoded return value as the metadata types it (ink 4: {'Ok': ...})
    raw: ExecResult
    events: list[DecodedEvent | ContractEvent] = field(default_factory=list)
    decode_error: MetadataError | None = None  # set when the output does not match the metadata

    @property
    def output(self) -> Any:
        """The message's own return value: ink! 4/5's ``Ok`` wrapper removed.

        Raises the decoding error if the contract's output does not match its metadata.
        """
        if self.decode_error is not None:
            raise self.decode_error
        if isinstance(self.value, dict) and len(self.value) == 1 and "Ok" in self.value:
            return self.value["Ok"]
        return self.value

    @property
    def success(self) -> bool:
        return self.raw.success

    @property
    def reverted(self) -> bool:
        return self.raw.reverted

    @property
    def gas_used(self) -> int:
        return self.raw.gas_used

    @property
    def debug_message(self) -> str:
        return self.raw.debug_message


class Contract:
    """A deployed contract with its metadata: call messages by label."""

    def __init__(self, cluster: LocalCluster, address: AccountId, metadata: ContractMetadata):
        self.cluster = cluster
        self.address = address
        self.metadata = metadata

    @property
    def ss58(self) -> str:
        return to_ss58(self.address)

    def query(self, message: str, args: Args = None, *, caller: Account = "alice", value: int = 0,
              gas_limit: int | None = None) -> CallResult:
        """Run ``message`` as a QUERY: any writes are discarded."""
        return self.cluster.call(self, message, args, caller=caller, value=value,
                                 mode=ExecutionMode.QUERY, gas_limit=gas_limit)

    def transact(self, message: str, args: Args = None, *, caller: Account = "alice", value: int = 0,
                 gas_limit: int | None = None) -> CallResult:
        """Run ``message`` as a TRANSACTION in a new block: writes are committed."""
        return self.cluster.call(self, message, args, caller=caller, value=value,
                                 mode=ExecutionMode.TRANSACTION, gas_limit=gas_limit)

    def __repr__(self) -> str:
        return f"<Contract {self.metadata.name} at {self.ss58}>"


def failure(what: str, result: CallResult) -> ExecutionError:
    raw = result.raw
    if raw.error is not None:
        err = ExecutionError(f"{what} failed: {raw.error}", kind=raw.error.kind)
        err.__cause__ = raw.error
        return err
    if raw.data[:1] == bytes([_LANG_ERR]):
        return ExecutionError(f"{what} reverted: the contract could not read its input (LangError)",
                              kind="ContractReverted")
    return ExecutionError(f"{what} reverted with {result.value!r} (data 0x{raw.data.hex()})",
                          kind="ContractReverted")

