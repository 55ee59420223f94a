"""A cluster as Phala runs it (issue 14): a system contract from genesis, block-end hooks set
through it, drivers, the log handler, contract weights, runtime upgrades — with real compiled
contracts (contracts_examples/system and contracts_examples/ticker) through LocalCluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.crypto.accounts import dev_account
from phat_runtime.errors import ConfigError, ContractNotFound, ExecutionError
from phat_runtime.pink.events import Status
from phat_runtime.pink.logs import LogStore, RecordKind
from phat_runtime.pink.structs import PinkEventKind
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.runtime.genesis import DEFAULT_SYSTEM_CONTRACT
from phat_runtime.runtime.local import Contract
from phat_runtime.state import EncryptedStore
from phat_runtime.testing.harness import to_wasm
from phat_runtime.types import ExecutionMode

from .wat_ext import SCRIPT_CONTRACT, Script

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
ALICE, BOB = dev_account("alice"), dev_account("bob")
HOOK_GAS = 10**10


def bundle(name: str) -> Path:
    return EXAMPLES / name / f"{name}.contract"


def logs_of(cluster: LocalCluster) -> LogStore:
    logs = cluster.runtime.services.logs
    assert isinstance(logs, LogStore)
    return logs


def hooked_ticker(cluster: LocalCluster, salt: bytes = b"") -> Contract:
    """A ticker granted admin by the system contract's owner, with its hook registered."""
    ticker = cluster.deploy(bundle("ticker"), "new", salt=salt)
    assert cluster.system_contract.transact("System::grant_admin", [ticker.address]).output == {"Ok": None}
    assert ticker.transact("register_hook", [HOOK_GAS]).output == {"Ok": None}
    return ticker


# --- genesis -------------------------------------------------------------------------------------


def test_a_local_cluster_has_a_system_contract_from_block_0() -> None:
    cluster = LocalCluster()
    system = cluster.system_contract
    assert cluster.block.number == 0  # installed in the genesis block
    assert cluster.runtime.settings.system_contract() == system.address == cluster.runtime.services.system_contract
    assert cluster.account(system.query("owner").output) == ALICE  # the cluster owner
    assert system.query("System::version").output == [1, 0, 0]
    expected = json.loads(bundle("system").read_text())["source"]["hash"]
    assert "0x" + (system.metadata.code_hash or b"").hex() == expected
    # what pink's system_contract_id answers, asked through wasm
    runtime = cluster.runtime
    code = runtime.upload_code(to_wasm(SCRIPT_CONTRACT), ALICE)
    block = BlockContext(1, 1)
    script = runtime.instantiate(ALICE, code, b"", block=block).contract
    assert script is not None
    ask = Script().ext(15, b"")
    result = runtime.call(ALICE, script, ask.encode(), mode=ExecutionMode.QUERY, block=block)
    assert ask.parse(result.data)[0].output == system.address


def test_the_packaged_system_contract_is_the_example_build() -> None:
    assert DEFAULT_SYSTEM_CONTRACT.read_bytes() == bundle("system").read_bytes()


def test_a_constructor_calling_the_system_contract_deploys() -> None:
    ticker = LocalCluster().deploy(bundle("ticker"), "new")  # SystemRef::instance() in `new`
    assert ticker.query("ticks").output == [0, 0]
    with pytest.raises(ExecutionError, match="SystemContractMissing"):
        LocalCluster(system=False).deploy(bundle("ticker"), "new")
    with pytest.raises(ContractNotFound, match="system=False"):
        _ = LocalCluster(system=False).system_contract


def test_the_cluster_owner_names_the_system_contract(tmp_path: Path) -> None:
    # Any bundle with a `default()` constructor: here flipper plays the system contract.
    cluster = LocalCluster(system=bundle("flipper"), owner="bob")
    assert cluster.system_contract.metadata.name == "flipper"
    assert cluster.system_contract.query("get").output is False
    with pytest.raises(ExecutionError) as info:  # flipper answers no System::get_driver
        cluster.deploy(bundle("ticker"), "new")
    assert info.value.kind == "ContractTrapped"
    # Bob owns ours when he creates the cluster.
    bobs = LocalCluster(owner="bob")
    assert bobs.account(bobs.system_contract.query("owner").output) == BOB
    with pytest.raises(ConfigError, match=r"needs a constructor `default\(\)`.*new"):
        LocalCluster(system=bundle("token"))  # token's only constructor takes arguments
    copy = tmp_path / "mine.contract"
    copy.write_bytes(bundle("system").read_bytes())
    assert LocalCluster(system=copy).system_contract.query("System::version").output == [1, 0, 0]


# --- hooks -----------------------------------------------------------------------------------------


def test_a_hook_set_through_the_system_contract_runs_at_the_end_of_every_later_block() -> None:
    cluster = LocalCluster()
    ticker = cluster.deploy(bundle("ticker"), "new")
    denied = ticker.transact("register_hook", [HOOK_GAS])  # not an administrator yet
    assert denied.reverted and denied.output == {"Err": {"System": "PermisionDenied"}}
    assert cluster.system_contract.transact("System::grant_admin", [ticker.address]).output == {"Ok": None}
    registered = ticker.transact("register_hook", [HOOK_GAS])
    assert registered.output == {"Ok": None}
    (record,) = registered.raw.pink_events  # emitted by the system contract, acted on at block end
    assert record.contract == cluster.system_contract.address and record.status is Status.APPLIED
    assert record.event is not None and record.event.kind is PinkEventKind.SET_HOOK
    set_in = cluster.block.number
    assert ticker.query("ticks").output == [0, 0]  # not in the block that set it
    (hook,) = cluster.runtime.settings.hooks()
    assert (hook.contract, hook.input, hook.gas_limit) == (ticker.address, bytes.fromhex("82796c7f"), HOOK_GAS)

    end = cluster.produce_block()
    assert [run.success for run in end.hooks] == [True]
    assert ticker.query("ticks").output == [1, set_in + 1]
    for _ in range(3):
        cluster.produce_block()
    assert ticker.query("ticks").output == [4, set_in + 4]
    # Any block counts, not only empty ones: a transaction's block ends with the hook too.
    assert ticker.transact("set_failing", [False]).success
    assert ticker.query("ticks").output == [5, set_in + 5]
    # Only the runtime may run the hook message: the hook's origin is the contract itself.
    assert ticker.transact("on_block_end").output == {"Err": "NotRuntime"}
    assert [r.message for r in logs_of(cluster).records(ticker.address)][:2] == ["tick 1", "tick 2"]


def test_a_hook_runs_until_replaced() -> None:
    cluster = LocalCluster()
    ticker = hooked_ticker(cluster)
    cluster.produce_block()
    assert ticker.query("ticks").output[0] == 1
    # The system contract's owner makes herself admin and points the ticker's hook at `ticks`
    # (a read-only message): one hook per contract, so this replaces the counting one.
    system = cluster.system_contract
    system.transact("System::grant_admin", [ALICE])
    ticks_selector = int(ticker.metadata.message("ticks").selector.hex(), 16)
    assert system.transact("System::set_hook", ["OnBlockEnd", ticker.address, ticks_selector, HOOK_GAS]).success
    counted = ticker.query("ticks").output[0]
    for _ in range(2):
        (run,) = cluster.produce_block().hooks
        assert run.success and run.hook.selector == ticks_selector
    assert ticker.query("ticks").output[0] == counted
    assert len(cluster.runtime.settings.hooks()) == 1


def test_hooks_run_in_address_order_and_a_failing_hook_does_not_fail_the_block() -> None:
    cluster = LocalCluster()
    tickers = [hooked_ticker(cluster, salt=bytes([i])) for i in range(3)]
    failing = tickers[1]
    assert failing.transact("set_failing", [True]).success
    before = {t.address: t.query("ticks").output[0] for t in tickers}
    number = cluster.block.number + 1
    end = cluster.produce_block()
    assert end.number == number == cluster.block.number  # the block happened
    assert [run.hook.contract for run in end.hooks] == sorted(t.address for t in tickers)
    (failed,) = end.failed_hooks
    assert failed.hook.contract == failing.address and failed.error.startswith("ContractTrapped")
    assert failed.result is not None and "asked to fail its hook" in failed.result.debug_message
    for ticker in tickers:
        expected = before[ticker.address] + (0 if ticker is failing else 1)
        assert ticker.query("ticks").output[0] == expected
    errors = [r.message for r in logs_of(cluster).records(failing.address) if r.level.name == "ERROR"]
    assert errors and f"failed in block {number}" in errors[-1] and "ContractTrapped" in errors[-1]
    # Fixed, it counts again from the next block on.
    assert failing.transact("set_failing", [False]).success
    cluster.produce_block()
    assert failing.query("ticks").output[0] == before[failing.address] + 2


def test_a_hook_out_of_gas_is_recorded() -> None:
    cluster = LocalCluster()
    ticker = cluster.deploy(bundle("ticker"), "new")
    cluster.system_contract.transact("System::grant_admin", [ticker.address])
    assert ticker.transact("register_hook", [1000]).success  # far too little gas
    (run,) = cluster.produce_block().hooks
    assert not run.success and run.error.startswith("OutOfGas")
    assert ticker.query("ticks").output == [0, 0]


def test_hooks_and_settings_survive_a_restart_and_match_on_two_clusters(tmp_path: Path) -> None:
    secret = os.urandom(64)
    roots = []
    for name in ("a", "b"):
        with EncryptedStore.open(tmp_path / f"{name}.db", secret) as store:
            cluster = LocalCluster(state=store, cluster_secret=secret[:64])
            ticker = hooked_ticker(cluster)
            cluster.produce_block()
            system = cluster.system_contract.address
        with EncryptedStore.open(tmp_path / f"{name}.db", secret) as store:
            resumed = LocalCluster(state=store, cluster_secret=secret[:64])
            assert resumed.runtime.system_contract == system
            assert resumed.system_contract.query("System::version").output == [1, 0, 0]  # metadata known
            assert [h.contract for h in resumed.runtime.settings.hooks()] == [ticker.address]
            resumed.produce_block()
            assert resumed.contract(ticker.address, ticker.metadata).query("ticks").output[0] == 2
            checkpoint = resumed.runtime.checkpoint()
            assert checkpoint is not None
            roots.append(checkpoint.state_root)
    assert roots[0] == roots[1]  # the same blocks give the same state, hooks included


# --- drivers, balances, weights, runtime upgrades, the log handler -----------------------------------


def test_drivers_are_registered_and_found() -> None:
    cluster = LocalCluster()
    system = cluster.system_contract
    oracle = cluster.deploy(bundle("oracle"), "new")
    feed = cluster.deploy(bundle("ticker"), "new")
    assert system.transact("System::set_driver", ["PriceFeed", feed.address]).output == {"Ok": None}
    assert cluster.account(system.query("System::get_driver", ["PriceFeed"]).output) == feed.address
    # oracle → system_contract_id (chain extension) → seal1.call System::get_driver
    assert cluster.account(oracle.query("driver", ["PriceFeed"]).output) == feed.address


@pytest.mark.parametrize("mode", ["query", "transact"])
def test_an_ordinary_contract_reads_balances(mode: str) -> None:
    cluster = LocalCluster()
    ticker = cluster.deploy(bundle("ticker"), "new")
    call = getattr(ticker, mode)
    bob = cluster.balance("bob")
    assert call("balance_of", [BOB]).output == [bob, bob]  # (total, free)
    assert call("system_total_balance_of", [BOB]).output == bob
    assert call("balance_of", [bytes(32)]).output == [0, 0]
    assert cluster.system_contract.query("System::free_balance_of", [BOB]).output == bob


def test_contract_weights_are_stored_for_the_query_scheduler() -> None:
    cluster = LocalCluster()
    system = cluster.system_contract
    ticker = cluster.deploy(bundle("ticker"), "new")
    assert cluster.runtime.settings.weight(ticker.address) == 1  # never weighed
    denied = system.transact("System::set_contract_weight", [ticker.address, 5])
    assert denied.output == {"Err": "PermisionDenied"}  # administrators only
    system.transact("System::grant_admin", [ALICE])
    result = system.transact("System::set_contract_weight", [ticker.address, 5])
    (record,) = result.raw.pink_events
    assert record.status is Status.APPLIED and cluster.runtime.settings.weight(ticker.address) == 5
    nobody = system.transact("System::set_contract_weight", [BOB, 9])
    (record,) = nobody.raw.pink_events
    assert record.status is Status.REFUSED and "no contract at" in record.note
    assert cluster.runtime.settings.weights() == {ticker.address: 5}


@pytest.mark.parametrize(("version", "status", "note"), [
    ((1, 2), Status.APPLIED, "already implements pink runtime 1.2"),
    ((1, 3), Status.REFUSED, "pink runtime 1.3 is not implemented by this runtime (it implements 1.2)"),
    ((2, 0), Status.REFUSED, "pink runtime 2.0 is not implemented"),
    ((1, 0), Status.REFUSED, "pink runtime 1.0 is not implemented"),
])
def test_runtime_upgrades_only_to_what_this_runtime_implements(version: tuple[int, int], status: Status,
                                                               note: str) -> None:
    cluster = LocalCluster()
    result = cluster.system_contract.transact("System::upgrade_runtime", [list(version)])
    assert result.output == {"Ok": None}
    (record,) = result.raw.pink_events
    assert record.event is not None and record.event.version == version
    assert record.status is status and note in record.note


def test_the_log_handler_receives_logs_events_and_outputs() -> None:
    cluster = LocalCluster()
    system = cluster.system_contract
    handler = cluster.deploy(bundle("cache_user"), "new")
    ticker = hooked_ticker(cluster)
    result = system.transact("System::set_driver", ["PinkLogger", handler.address])
    (record,) = result.raw.pink_events
    assert record.event is not None and record.event.kind is PinkEventKind.SET_LOG_HANDLER
    assert record.status is Status.APPLIED and cluster.runtime.settings.log_handler() == handler.address
    logs = logs_of(cluster)
    assert logs.handler == handler.address
    seen = logs.records(handler.address)[-1].sequence if logs.records(handler.address) else 0

    # "tick 1" was logged at the end of the set_driver block, by the hook, which runs before
    # the block's system events are applied: the handler did not exist yet.
    assert [r.message for r in logs.records(ticker.address)] == ["tick 1"]
    cluster.produce_block()  # each block's hook logs "tick n", and its outcome is delivered
    token = cluster.deploy(bundle("token"), "new", [1000])
    token.transact("transfer", [BOB, 10])
    ticker.query("ticks")
    delivered = logs.records(handler.address, since=seen)
    ticks = [r for r in delivered if r.kind is RecordKind.LOG and r.source == ticker.address]
    assert [r.message for r in ticks] == ["tick 2", "tick 3", "tick 4"]
    assert all(r.block_number is not None for r in ticks)
    events = [r for r in delivered if r.kind is RecordKind.EVENT and r.source == token.address]
    assert len(events) == 2  # Transfer at construction, Transfer of the transfer
    assert json.loads(events[-1].message)["topics"] and json.loads(events[-1].message)["data"].startswith("0x")
    outputs = [json.loads(r.message) for r in delivered if r.kind is RecordKind.OUTPUT and r.source == token.address]
    assert outputs[-1]["origin"] == "0x" + ALICE.hex() and outputs[-1]["error"] is None
    hook_outputs = [json.loads(r.message) for r in delivered if r.kind is RecordKind.OUTPUT
                    and r.source == ticker.address]
    assert hook_outputs[0]["origin"] == "0x" + ticker.address.hex()  # the hook's origin is the contract
    # A query's log lines (here: a debug message) reach the handler too, marked as a query's.
    system.transact("System::grant_admin", [ALICE])
    system.query("System::deploy_sidevm_to", [BOB, bytes(32)])
    (line,) = [r for r in logs.records(handler.address, since=seen) if r.source == system.address
               and r.mode is ExecutionMode.QUERY]
    assert "no SideVM" in line.message and line.kind is RecordKind.LOG
    # the handler's own records are not copied to itself
    assert all(r.source != handler.address for r in logs.records(handler.address))


def test_the_example_of_docs_clusters_md_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "clusters.md").read_text()
    (code,) = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    monkeypatch.chdir(root)
    exec(compile(code, "docs/clusters.md", "exec"), {})
