"""A worker's cluster as Phala runs it (issue 14), through the real server on loopback: the
system contract from genesis, a hook set through it, drivers, balances — and two workers fed
the same blocks end with the same state root, hooks included."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from phat_runtime.codec.messages import Outcome, RequestKind, SignedRequest
from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import dev_account, parse_account
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.runtime.genesis import GENESIS_BLOCK
from phat_runtime.runtime.records import contract_address
from phat_runtime.types import ExecutionMode
from phat_runtime.worker.pipeline import encode_upload
from phat_runtime.worker.service import Worker, WorkerConfig, transaction_of

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
SYSTEM = EXAMPLES / "system" / "system.contract"
TICKER = EXAMPLES / "ticker" / "ticker.contract"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
HOOK_GAS = 10**10
#: Block times of the two-worker test (fixed, as a chain's would be).
GENESIS_TIME_MS = 1_700_000_000_000


def test_the_worker_serves_a_system_contract_from_genesis(served, alice: Signer, bob: Signer) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    address = worker.cluster.system_contract
    assert address is not None and worker.cluster.checkpoint().number == GENESIS_BLOCK.number
    system = client.contract(address, SYSTEM)
    assert system.query("System::version", signer=bob).output == [1, 0, 0]
    assert client.contract_info(address)["deployer_hex"] == "0x" + dev_account("alice").hex()  # the default owner

    # A constructor that reaches SystemRef::instance() deploys; a hook set through the system
    # contract by an admin runs at the end of every later block.
    ticker = client.deploy(TICKER, "new", signer=alice)
    assert system.transact("System::grant_admin", [ticker.address], signer=alice).output == {"Ok": None}
    assert ticker.transact("register_hook", [HOOK_GAS], signer=alice).output == {"Ok": None}
    assert ticker.query("ticks", signer=alice).output == [0, 0]
    flip = client.deploy(FLIPPER, "new", [True], signer=bob)  # two more blocks (upload, instantiate)
    count, last = ticker.query("ticks", signer=alice).output
    assert count == 2 and last == client.info(refresh=True).block
    flip.transact("flip", signer=bob)
    assert ticker.query("ticks", signer=alice).output[0] == 3

    # Drivers: set with System::set_driver, returned by get_driver.
    assert system.transact("System::set_driver", ["Feed", flip.address], signer=alice).output == {"Ok": None}
    assert parse_account(system.query("System::get_driver", ["Feed"], signer=bob).output) == flip.address

    # balance_of from an ordinary contract, in a query and in a transaction, and through the system.
    account = dev_account("charlie")
    worker.cluster.records.set_balance(account, 12345)  # committed with the next block
    flip.transact("flip", signer=bob)
    assert ticker.query("balance_of", [account], signer=bob).output == [12345, 12345]
    assert ticker.transact("balance_of", [account], signer=bob).output == [12345, 12345]
    assert ticker.query("system_total_balance_of", [account], signer=bob).output == 12345


def test_a_restarted_worker_keeps_its_system_contract_and_hooks(data_dir: Path, alice: Signer) -> None:
    worker = Worker(WorkerConfig(data_dir=data_dir))
    system = worker.cluster.system_contract
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        ticker = client.deploy(TICKER, "new", signer=alice)
        client.contract(system, SYSTEM).transact("System::grant_admin", [ticker.address], signer=alice)
        ticker.transact("register_hook", [HOOK_GAS], signer=alice)
        client.close()
    worker.stop()
    again = Worker(WorkerConfig(data_dir=data_dir))
    assert again.cluster.system_contract == system
    assert [h.contract for h in again.cluster.settings.hooks()] == [ticker.address]
    with ServerThread(again) as url:
        client = WorkerClient(url, policy=development_policy())
        before = client.contract(ticker.address, TICKER).query("ticks", signer=alice).output[0]
        client.deploy(FLIPPER, "new", [False], signer=alice)
        assert client.contract(ticker.address, TICKER).query("ticks", signer=alice).output[0] == before + 2
        client.close()
    again.stop()


def _requests(worker_identity: bytes, alice: Signer, system: bytes) -> tuple[list[list[SignedRequest]], bytes]:
    """Blocks of signed requests with fixed nonces and deadlines (as a chain would order them),
    and the ticker's address."""
    ticker = ContractMetadata.load(TICKER)
    assert ticker.wasm is not None and ticker.code_hash is not None
    address = contract_address(alice.public_key, ticker.code_hash, bytes(32), b"")
    deadline = GENESIS_TIME_MS + 3_600_000

    def make(kind: RequestKind, n: int, **kw: object) -> SignedRequest:
        fields = {"contract": bytes(32), "code_hash": bytes(32), "payload": b"", "salt": b"", "value": 0,
                  "gas_limit": 0, **kw}
        return SignedRequest(kind, worker_identity, fields["contract"], fields["code_hash"], fields["payload"],  # type: ignore[arg-type]
                             fields["salt"], fields["value"], fields["gas_limit"], bytes([n]) * 32,  # type: ignore[arg-type]
                             deadline, alice.scheme, alice.public_key).signed_by(alice)

    system_meta = ContractMetadata.load(SYSTEM)
    return [
        [make(RequestKind.UPLOAD, 1, payload=encode_upload(ticker.wasm, TICKER.read_bytes()))],
        [make(RequestKind.INSTANTIATE, 2, code_hash=ticker.code_hash, payload=ticker.encode_constructor("new"))],
        [make(RequestKind.CALL, 3, contract=system,
              payload=system_meta.encode_message("System::grant_admin", [address]))],
        [make(RequestKind.CALL, 4, contract=address, payload=ticker.encode_message("register_hook", [HOOK_GAS]))],
        [], [],
    ], address


def test_two_workers_fed_the_same_blocks_agree_on_the_state_root(tmp_path: Path, alice: Signer) -> None:
    """What a chain source does: the same ordered requests to every worker of the cluster."""
    workers = [Worker(WorkerConfig(data_dir=tmp_path / name)) for name in ("one", "two")]
    ticker = ContractMetadata.load(TICKER)
    try:
        assert workers[0].cluster.system_contract == workers[1].cluster.system_contract
        roots = []
        for worker in workers:
            system = worker.cluster.system_contract
            assert system is not None
            blocks, address = _requests(worker.identity.public_key, alice, system)
            now = GENESIS_TIME_MS
            for i, block in enumerate(blocks):
                number = worker.pipeline.height + 1
                result = worker.pipeline.apply_block(
                    [transaction_of(r) for r in block], number=number,
                    block_hash=blake2_256(b"test block" + number.to_bytes(8, "little")),
                    timestamp_ms=now + i * 6000)
                outcomes = result.results
                assert all(isinstance(o, Outcome) and o.error_kind is None and not o.flags
                           for o in outcomes), outcomes
            roots.append(result.state_root)
            assert [h.contract for h in worker.cluster.settings.hooks()] == [address]
            ticks = worker.cluster.call(alice.public_key, address, ticker.encode_message("ticks"),
                                        mode=ExecutionMode.QUERY, block=BlockContext(number, now))
            assert ticker.decode_return(ticker.message("ticks"), ticks.data) == {"Ok": [2, number]}
        assert roots[0] == roots[1] != bytes(32)
    finally:
        for worker in workers:
            worker.stop()


def test_a_weight_set_through_the_system_contract_orders_contended_queries(tmp_path: Path, alice: Signer,
                                                                          bob: Signer) -> None:
    """System::set_contract_weight over RPC → PinkEvent applied at the block's end → the query
    pool admits the heavier contract's waiting queries 3 : 1 (real HTTP queries)."""
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", max_in_flight=1))
    with ServerThread(worker) as url:
        client = WorkerClient(url, policy=development_policy())
        system = client.contract(worker.cluster.system_contract, SYSTEM)  # type: ignore[arg-type]
        light = client.deploy(FLIPPER, "new", [True], signer=bob, salt=b"light")
        heavy = client.deploy(FLIPPER, "new", [True], signer=bob, salt=b"heavy")
        assert system.transact("System::grant_admin", [alice.public_key], signer=alice).output == {"Ok": None}
        assert system.transact("System::set_contract_weight", [heavy.address, 3], signer=bob).output == {
            "Err": "PermisionDenied"}  # admins only
        set_weight = system.transact("System::set_contract_weight", [heavy.address, 3], signer=alice)
        assert set_weight.output == {"Ok": None}
        assert worker.cluster.settings.weights() == {heavy.address: 3}
        assert (worker.pool.weight(heavy.address), worker.pool.weight(light.address)) == (3, 1)

        admitted: list[bytes] = []
        real_slot = worker.pool.slot

        @contextlib.contextmanager
        def recording(contract: bytes = b"") -> Iterator[None]:
            with real_slot(contract):
                admitted.append(contract)  # one run slot: admissions are serialized
                yield

        worker.pool.slot = recording  # type: ignore[method-assign]
        answers: list[bool] = []
        with worker.pool.slot():  # take the only slot: every query below waits
            threads = [threading.Thread(target=lambda c=c: answers.append(c.query("get", signer=bob).output))
                       for _ in range(8) for c in (light, heavy)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 120
            while worker.pool.waiting < 16:
                assert time.monotonic() < deadline, f"{worker.pool.waiting} queries waiting"
                time.sleep(0.01)
        for thread in threads:
            thread.join(120)
        assert answers == [True] * 16
        order = admitted[1:]  # after the holder
        assert len(order) == 16
        first = order[:8]  # while both contracts have queries waiting
        assert (first.count(light.address), first.count(heavy.address)) == (2, 6)
        assert order[-4:] == [light.address] * 4  # the rest of the light contract's, at the end
        client.close()
