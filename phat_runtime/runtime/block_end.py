"""The end of a block: run the ``OnBlockEnd`` hooks, then act on the block's system events.

:meth:`Cluster.end_block <phat_runtime.runtime.cluster.Cluster.end_block>` calls
:func:`end_block` after the block's last transaction and before the block is committed, so
everything here is part of the block and the same on every worker that applies it:

1. **Hooks**, in the order of their contracts' addresses (``runtime/settings.py``): each is
   a TRANSACTION call of the contract by itself (origin = caller = the contract) with input
   = the hook's selector as 4 big-endian bytes and the hook's gas limit, as phactory's
   ``on_block_end``. A hook that traps, reverts or runs out of gas is recorded in the
   :class:`BlockEnd` (and logged at Error level to its contract's log) and its writes are
   dropped; the block goes on. A hook whose contract no longer exists is removed.
2. **System events** — the ``PinkEvent`` s the system contract emitted during the block (its
   transactions and the hooks just run), in emission order. Each record's status becomes
   ``APPLIED`` or ``REFUSED`` with a note:

   - ``SetHook{OnBlockEnd, contract, selector, gas_limit}``: stored (replacing that
     contract's hook); it first runs at the end of the *next* block. Refused if no contract
     lives at that address (phactory ignores it too);
   - ``SetLogHandler(contract)``: the cluster's log handler (``pink/logs.py`` delivers to it);
   - ``SetContractWeight{contract, weight}``: stored for the query scheduler; refused for an
     address that is not a contract;
   - ``UpgradeRuntimeTo{version}``: applied (a no-op) only for the pink runtime version this
     runtime implements, otherwise refused with the reason;
   - ``SetJsRuntime``: refused — ``js_eval`` runs the built-in QuickJS;
   - SideVM events never get here: they are ``UNSUPPORTED`` when emitted.

Must not: run anything but hooks, or let a failing hook fail the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import PhatError
from phat_runtime.pink.events import PinkEventRecord, Status
from phat_runtime.pink.logs import LogLevel, LogStore
from phat_runtime.pink.misc import RUNTIME_VERSION
from phat_runtime.pink.structs import PinkEventKind
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.runtime.settings import ClusterSettings, Hook
from phat_runtime.types import AccountId, ExecutionMode

if TYPE_CHECKING:
    from phat_runtime.runtime.cluster import Cluster, ExecResult


@dataclass
class HookRun:
    """One hook's run at the end of a block. ``error`` is empty when it succeeded."""

    hook: Hook
    result: ExecResult | None = None
    error: str = ""

    @property
    def success(self) -> bool:
        return not self.error


@dataclass
class BlockEnd:
    """What the end of block ``number`` did: the hooks run, and the system events acted on."""

    number: int
    hooks: list[HookRun] = field(default_factory=list)
    events: list[PinkEventRecord] = field(default_factory=list)

    @property
    def failed_hooks(self) -> list[HookRun]:
        return [run for run in self.hooks if not run.success]


def end_block(cluster: Cluster, block: BlockContext) -> BlockEnd:
    """Run the hooks, then apply the block's system events — those of its transactions and
    those the hooks emitted, in emission order (see the module doc)."""
    settings = ClusterSettings(cluster.state)
    report = BlockEnd(block.number)
    for hook in settings.hooks():
        report.hooks.append(_run_hook(cluster, settings, hook, block))
    report.events = cluster.take_pending_system_events()
    for record in report.events:
        _apply(cluster, settings, record, block)
    return report


def _run_hook(cluster: Cluster, settings: ClusterSettings, hook: Hook, block: BlockContext) -> HookRun:
    run = HookRun(hook)
    if cluster.records.contract(hook.contract) is None:
        settings.remove_hook(hook.contract)
        run.error = "the contract no longer exists; its hook was removed"
        return run
    try:
        run.result = cluster.call(hook.contract, hook.contract, hook.input, mode=ExecutionMode.TRANSACTION,
                                  block=block, gas_limit=hook.gas_limit)
    except PhatError as exc:  # e.g. its code may no longer run in a transaction
        run.error = f"{type(exc).__name__}: {exc}"
    else:
        if run.result.error is not None:
            run.error = f"{run.result.error.kind}: {run.result.error}"
        elif run.result.reverted:
            run.error = f"reverted with 0x{run.result.data.hex()}"
    if run.error:
        logs = cluster.services.logs
        if isinstance(logs, LogStore):
            logs.append(hook.contract, LogLevel.ERROR,
                        f"OnBlockEnd hook (selector 0x{hook.input.hex()}) failed in block {block.number}: "
                        f"{run.error}", mode=ExecutionMode.TRANSACTION, block_number=block.number)
    return run


def _apply(cluster: Cluster, settings: ClusterSettings, record: PinkEventRecord, block: BlockContext) -> None:
    event = record.event
    if record.status is not Status.PENDING or event is None:
        return
    kind = event.kind
    target = AccountId(bytes(event.contract)) if event.contract is not None else None

    def done(status: Status, note: str) -> None:
        record.status, record.note = status, note

    if kind in (PinkEventKind.SET_HOOK, PinkEventKind.SET_CONTRACT_WEIGHT) and (
        target is None or cluster.records.contract(target) is None
    ):
        done(Status.REFUSED, f"{event.name}: no contract at {_name(target)}")
    elif kind is PinkEventKind.SET_HOOK and target is not None:
        hook = Hook(target, event.selector or 0, event.gas_limit or 0)
        settings.set_hook(hook)
        done(Status.APPLIED, f"OnBlockEnd hook of {_name(target)}: selector 0x{hook.input.hex()}, gas limit "
                             f"{hook.gas_limit}; runs from the end of block {block.number + 1}")
    elif kind is PinkEventKind.SET_LOG_HANDLER and target is not None:
        settings.set_log_handler(target)
        done(Status.APPLIED, f"log handler is now {_name(target)}")
    elif kind is PinkEventKind.SET_CONTRACT_WEIGHT and target is not None:
        settings.set_weight(target, event.weight or 0)
        done(Status.APPLIED, f"weight of {_name(target)} is now {event.weight or 0}")
    elif kind is PinkEventKind.UPGRADE_RUNTIME_TO:
        have = ".".join(map(str, RUNTIME_VERSION))
        asked = ".".join(map(str, event.version or (0, 0)))
        if event.version == RUNTIME_VERSION:
            done(Status.APPLIED, f"this runtime already implements pink runtime {have}")
        else:
            done(Status.REFUSED, f"pink runtime {asked} is not implemented by this runtime (it implements {have})")
    elif kind is PinkEventKind.SET_JS_RUNTIME:
        done(Status.REFUSED, "SetJsRuntime is not supported: js_eval runs the built-in QuickJS")
    else:
        done(Status.REFUSED, f"{event.name} is not a system event this runtime acts on")


def _name(address: bytes | None) -> str:
    return f"{to_ss58(address)} (0x{address.hex()})" if address is not None else "no address"
