"""A worker process for crash tests of the encrypted store, and the plan it applies.

The worker runs the real runtime — :class:`~phat_runtime.runtime.local.LocalCluster` over an
:class:`~phat_runtime.state.store.EncryptedStore` with the example token contract — through a
deterministic plan: block 0 is genesis (dev endowments), block 1 deploys the token, and every
later block holds ``txs`` transfers. The first transfer of each block sends 1 unit to
:data:`COUNTER`, so the counter's balance is the number of transfer blocks applied; the others
move pseudo-random, always affordable amounts between :data:`HOLDERS`. On start the worker
resumes after the store's last committed block, so killing it at any point and restarting it
must end in exactly the state of a run that never crashed::

    PHAT_TEST_CLUSTER_SECRET=<hex> python -m phat_runtime.testing.state_worker DB --blocks 40

It prints ``ready`` once imported, ``block <n> <root hex>`` after each committed block and
``done <root hex>`` at the end (each line flushed). The secret comes from the environment so it
never shows in a process listing; it is a test key. Must not: be imported by product code.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from phat_runtime.crypto.accounts import dev_account
from phat_runtime.runtime.local import Contract, LocalCluster
from phat_runtime.runtime.records import contract_address
from phat_runtime.state import EncryptedStore
from phat_runtime.state.kv import KVStore

TOKEN = Path(__file__).resolve().parents[2] / "contracts_examples" / "token" / "token.contract"
SECRET_ENV = "PHAT_TEST_CLUSTER_SECRET"
SUPPLY = 10**15
#: Receives 1 unit in every transfer block: its balance counts the blocks applied.
COUNTER = bytes([0xC0]) * 32
#: Token holders besides Alice (raw account ids: no keys needed to be a caller here).
HOLDERS = tuple(bytes([0x10 + i]) * 32 for i in range(5))
FIRST_TRANSFER_BLOCK = 2


@dataclass(frozen=True)
class Transfer:
    sender: bytes
    to: bytes
    amount: int


def make_plan(blocks: int, txs: int, seed: int) -> tuple[list[list[Transfer]], dict[bytes, int]]:
    """(transfers of each transfer block, the token balances after all of them)."""
    rng = random.Random(seed)
    alice = dev_account("alice")
    ledger = {alice: SUPPLY, COUNTER: 0, **dict.fromkeys(HOLDERS, 0)}
    accounts = [alice, *HOLDERS]
    plan: list[list[Transfer]] = []
    for _ in range(blocks):
        block = [Transfer(alice, COUNTER, 1)]
        ledger[alice] -= 1
        ledger[COUNTER] += 1
        for _ in range(txs - 1):
            sender = rng.choice([a for a in accounts if ledger[a] > 0])
            to = rng.choice([a for a in accounts if a != sender])
            # Distinct-ish amounts so a transfer applied twice or lost shows in the balances.
            amount = rng.randint(1, max(1, min(ledger[sender], 10**9)))
            ledger[sender] -= amount
            ledger[to] += amount
            block.append(Transfer(sender, to, amount))
        plan.append(block)
    return plan, ledger


def token_address() -> bytes:
    from phat_runtime.codec.metadata import ContractMetadata

    code_hash = ContractMetadata.load(TOKEN).code_hash
    assert code_hash is not None
    return contract_address(dev_account("alice"), code_hash, bytes(32), b"")


def apply_plan(cluster: LocalCluster, plan: list[list[Transfer]],
               on_block: Callable[[int], None] = lambda n: None) -> Contract:
    """Bring ``cluster`` (fresh or resumed) to the end of ``plan``, one block at a time."""
    if cluster.block.number < FIRST_TRANSFER_BLOCK - 1:
        token = cluster.deploy(TOKEN, "new", [SUPPLY])
        on_block(cluster.block.number)
    else:
        token = cluster.contract(token_address(), cluster.upload(TOKEN))
    last = FIRST_TRANSFER_BLOCK + len(plan) - 1
    while cluster.block.number < last:
        with cluster.new_block() as block:
            for tx in plan[block.number - FIRST_TRANSFER_BLOCK]:
                result = token.transact("transfer", [tx.to, tx.amount], caller=tx.sender)
                if not result.success or result.output != {"Ok": None}:
                    raise RuntimeError(f"block {block.number}: transfer failed: {result.value!r}")
        on_block(block.number)
    return token


def balances(token: Contract) -> dict[bytes, int]:
    accounts = [dev_account("alice"), COUNTER, *HOLDERS]
    return {a: int(token.query("balance_of", [a]).output) for a in accounts}


def reference(plan: list[list[Transfer]], state: KVStore) -> Contract:
    """The run that never crashes (any store, e.g. a MemoryBackend)."""
    return apply_plan(LocalCluster(state=state), plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("db")
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    secret = bytes.fromhex(os.environ[SECRET_ENV])
    plan, _ = make_plan(args.blocks, args.txs, args.seed)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    say("ready")
    with EncryptedStore.open(args.db, secret) as store:
        cluster = LocalCluster(state=store)
        apply_plan(cluster, plan, lambda n: say(f"block {n} {store.state_root.hex()}"))
        say(f"done {store.state_root.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
