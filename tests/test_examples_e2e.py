"""The example contracts end to end through the public in-process API (LocalCluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phat_runtime import LocalCluster
from phat_runtime.codec.metadata import ContractMetadata, DecodedEvent
from phat_runtime.crypto.accounts import dev_account, to_ss58
from phat_runtime.errors import ContractTrapped, ExecutionError
from phat_runtime.runtime.records import contract_address
from phat_runtime.types import ExecutionMode

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts_examples"
ALICE = to_ss58(dev_account("alice"))
BOB = to_ss58(dev_account("bob"))
CHARLIE = to_ss58(dev_account("charlie"))


def bundle(name: str) -> Path:
    return EXAMPLES / name / f"{name}.contract"


@pytest.fixture()
def cluster() -> LocalCluster:
    return LocalCluster()


# --- flipper -------------------------------------------------------------------------------


def test_flipper_query_and_transaction(cluster: LocalCluster) -> None:
    flipper = cluster.deploy(bundle("flipper"), "new", [True])
    assert flipper.query("get").value == {"Ok": True}
    assert flipper.query("flip").success  # a query: its write is discarded...
    assert flipper.query("get").output is True
    flip = flipper.transact("flip")  # ...a transaction commits
    assert flip.success and flip.output is None and flip.gas_used > 0
    assert flipper.query("get").output is False


def test_flipper_default_constructor_and_raw_results(cluster: LocalCluster) -> None:
    flipper = cluster.deploy(bundle("flipper"), "default")
    assert flipper.query("get").output is False
    get = flipper.query("get")
    assert (get.raw.flags, get.raw.data) == (0, b"\x00\x00")  # MessageResult Ok(false)


def test_constructor_output_is_ink4_constructor_result(cluster: LocalCluster) -> None:
    metadata = cluster.upload(bundle("flipper"))
    assert metadata.code_hash is not None
    raw = cluster.runtime.instantiate(
        cluster.account("alice"), metadata.code_hash, metadata.encode_constructor("new", [True]),
        block=cluster._next_block(),
    )
    assert raw.success
    assert raw.data == b"\x00"  # ConstructorResult<()> = Ok(()) for an infallible constructor
    assert metadata.decode_return(metadata.constructor("new"), raw.data) == {"Ok": None}


def test_unknown_selector_reverts_with_lang_error(cluster: LocalCluster) -> None:
    flipper = cluster.deploy(bundle("flipper"), "new", [False])
    raw = cluster.runtime.call(cluster.account("alice"), flipper.address, b"\xde\xad\xbe\xef",
                               mode=ExecutionMode.QUERY, block=cluster.block)
    assert raw.reverted and raw.data == b"\x01\x01"  # Err(LangError::CouldNotReadInput)


def test_non_payable_message_with_value_traps(cluster: LocalCluster) -> None:
    flipper = cluster.deploy(bundle("flipper"), "new", [False])
    result = flipper.transact("flip", value=5)
    assert isinstance(result.raw.error, ContractTrapped)
    assert flipper.query("get").output is False
    assert cluster.balance(flipper.address) == 0


def test_failing_constructor_raises_with_reason(cluster: LocalCluster) -> None:
    with pytest.raises(ExecutionError, match="constructor 'new' of flipper failed"):
        cluster.deploy(bundle("flipper"), "new", [True], value=1)  # non-payable constructor


# --- token -----------------------------------------------------------------------------------


@pytest.fixture()
def token(cluster: LocalCluster):  # type: ignore[no-untyped-def]
    return cluster.deploy(bundle("token"), "new", {"total_supply": 1_000_000})


def test_token_constructor_event_and_balances(cluster: LocalCluster, token) -> None:  # type: ignore[no-untyped-def]
    assert token.query("total_supply").output == 1_000_000
    assert token.query("balance_of", [ALICE]).output == 1_000_000
    assert token.query("balance_of", {"owner": BOB}).output == 0


def test_token_transfer_emits_decoded_event(token) -> None:  # type: ignore[no-untyped-def]
    result = token.transact("transfer", {"to": BOB, "value": 250})
    assert result.success and result.value == {"Ok": {"Ok": None}}
    assert len(result.events) == 1
    event = result.events[0]
    assert isinstance(event, DecodedEvent)
    assert event.label == "Transfer"
    assert event.args == {"from": ALICE, "to": BOB, "value": 250}
    assert len(result.raw.events[0].topics) == 3  # signature + two indexed fields
    assert token.query("balance_of", [BOB]).output == 250
    assert token.query("balance_of", [ALICE]).output == 999_750


def test_token_insufficient_balance_reverts_and_changes_nothing(token) -> None:  # type: ignore[no-untyped-def]
    result = token.transact("transfer", [ALICE, 1], caller="bob")
    assert result.reverted and not result.success
    assert result.output == {"Err": "InsufficientBalance"}
    assert result.events == [] and result.raw.events == []
    assert token.query("balance_of", [ALICE]).output == 1_000_000


def test_token_allowance_flow(token) -> None:  # type: ignore[no-untyped-def]
    approve = token.transact("approve", {"spender": BOB, "value": 100})
    assert approve.success
    assert [e.label for e in approve.events] == ["Approval"]
    assert token.query("allowance", [ALICE, BOB]).output == 100
    too_much = token.transact("transfer_from", [ALICE, CHARLIE, 101], caller="bob")
    assert too_much.output == {"Err": "InsufficientAllowance"}
    ok = token.transact("transfer_from", [ALICE, CHARLIE, 60], caller="bob")
    assert ok.success
    assert token.query("allowance", [ALICE, BOB]).output == 40
    assert token.query("balance_of", [CHARLIE]).output == 60


def test_token_arguments_are_checked_against_metadata(token) -> None:  # type: ignore[no-untyped-def]
    from phat_runtime.errors import EncodeError

    with pytest.raises(EncodeError, match="value"):
        token.query("transfer", {"to": BOB, "value": "lots"})
    with pytest.raises(EncodeError, match="to"):
        token.query("transfer", {"value": 1})


# --- factory (cross-contract instantiate and call) ---------------------------------------------


def test_factory_instantiates_and_calls_children(cluster: LocalCluster) -> None:
    flipper_meta = cluster.upload(bundle("flipper"))
    assert flipper_meta.code_hash is not None
    factory = cluster.deploy(bundle("factory"), "new", ["0x" + flipper_meta.code_hash.hex()])

    created = factory.transact("create", [False, "0x01"])
    assert created.success, created.raw.error
    child_ss58 = created.output
    expected = contract_address(factory.address, flipper_meta.code_hash, cluster.runtime.cluster_id, b"\x01")
    assert cluster.account(child_ss58) == expected

    child = cluster.contract(child_ss58)
    assert isinstance(child.metadata, ContractMetadata) and child.metadata.name == "flipper"
    assert child.query("get").output is False
    assert factory.transact("flip_child", [child_ss58]).success
    assert child.query("get").output is True
    assert factory.query("get_child", [child_ss58]).output is True
    assert factory.query("children").output == [child_ss58]


def test_factory_duplicate_salt_fails_and_keeps_state(cluster: LocalCluster) -> None:
    flipper_meta = cluster.upload(bundle("flipper"))
    assert flipper_meta.code_hash is not None
    factory = cluster.deploy(bundle("factory"), "new", ["0x" + flipper_meta.code_hash.hex()])
    assert factory.transact("create", [True, "0x02"]).success
    again = factory.transact("create", [True, "0x02"])
    assert not again.success
    assert len(factory.query("children").output) == 1
