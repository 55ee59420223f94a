"""The pink example contracts (contracts_examples/{oracle,key_custody,cache_user,system}) end to
end through LocalCluster: real compiled Wasm calling pink's chain extension, with the cluster's
PinkServices configured as a worker would (cluster secret, loopback-only egress, local cache,
system contract). Signatures are checked with libraries the runtime does not use to make them:
eth-keys for the oracle's secp256k1 reports, py-sr25519-bindings for key custody."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sr25519
from eth_keys import keys
from eth_utils import keccak

from phat_runtime import LocalCluster
from phat_runtime.codec.metadata import DecodedEvent
from phat_runtime.crypto.accounts import dev_account
from phat_runtime.crypto.kdf import derive_contract_sr25519
from phat_runtime.pink.cache import LocalCache
from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
from phat_runtime.pink.events import Status
from phat_runtime.pink.structs import CacheOpKind, PinkEventKind
from phat_runtime.runtime.local import DEV_ENDOWMENT, Contract
from phat_runtime.runtime.records import STORAGE

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
CLUSTER_SECRET = hashlib.blake2b(b"test_examples_pink cluster key", digest_size=64).digest()
OTHER_SECRET = hashlib.blake2b(b"another cluster", digest_size=64).digest()
ALICE = dev_account("alice")
BOB = dev_account("bob")


def bundle(name: str) -> Path:
    return EXAMPLES / name / f"{name}.contract"


# --- fixtures: a price server, the egress, clusters ---------------------------------------------

#: path → (status, body) the price server answers with.
PRICE_ROUTES: dict[str, tuple[int, bytes]] = {
    "/eth": (200, b'{"symbol": "ETH/USD", "price": "123.45"}'),
    "/int": (200, b'{"price": 12345}'),
    "/nested": (200, b'{"meta": {"price": 1, "tags": ["}", "{"]}, "price": 0.000000019}'),
    "/exp": (200, b'{"price": 1.5e2}'),
    "/fine": (200, b'{"price": "2.123456789"}'),  # finer than 8 decimals: truncated
    "/missing": (200, b'{"value": 1}'),
    "/negative": (200, b'{"price": -1}'),
    "/html": (200, b"<html>not json</html>"),
    "/down": (503, b'{"price": 1}'),
}


class _PriceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = PRICE_ROUTES.get(self.path, (404, b"no such feed"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def price_server() -> Iterator[str]:
    """Base URL of a local HTTP server answering :data:`PRICE_ROUTES`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PriceHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def egress() -> Iterator[HttpxEgress]:
    """The product egress; its policy admits loopback, where the price server lives."""
    with HttpxEgress(EgressPolicy(allow_loopback=True)) as egress:
        yield egress


def make_cluster(secret: bytes = CLUSTER_SECRET, egress: HttpxEgress | None = None,
                 system: bool = True) -> LocalCluster:
    cluster = LocalCluster(system=system)
    services = cluster.runtime.services
    services.cluster_secret = secret
    services.egress = egress
    services.cache = LocalCache()
    return cluster


@pytest.fixture()
def cluster(egress: HttpxEgress) -> LocalCluster:
    return make_cluster(egress=egress)


# --- oracle ------------------------------------------------------------------------------------


def report_hash(price: int, timestamp_ms: int) -> bytes:
    """What the oracle signs (contracts_examples/oracle/lib.rs), rebuilt independently:
    EIP-191 over keccak256(abi.encodePacked(uint128 price, uint64 timestamp_ms))."""
    digest = keccak(price.to_bytes(16, "big") + timestamp_ms.to_bytes(8, "big"))
    return keccak(b"\x19Ethereum Signed Message:\n32" + digest)


def hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def test_oracle_report_verifies_with_eth_keys(cluster: LocalCluster, price_server: str) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    before = int(time.time() * 1000)
    result = oracle.query("get_price", [price_server + "/eth"])
    after = int(time.time() * 1000)
    assert result.success, result.raw.error
    report = result.output["Ok"]
    assert report["price"] == 12_345_000_000  # 123.45 with 8 decimals
    assert before <= report["timestamp_ms"] <= after

    signature = keys.Signature(signature_bytes=hex_bytes(report["signature"]))  # r ‖ s ‖ v, v ∈ {0, 1}
    message_hash = report_hash(report["price"], report["timestamp_ms"])
    public = signature.recover_public_key_from_msg_hash(message_hash)
    signer = hex_bytes(report["signer"])
    assert public.to_canonical_address() == signer
    assert keys.ecdsa_verify(message_hash, signature, public)
    assert hex_bytes(oracle.query("signer_address").output) == signer

    # A report for another price (or time) does not verify against the signer.
    forged = report_hash(report["price"] + 1, report["timestamp_ms"])
    assert signature.recover_public_key_from_msg_hash(forged).to_canonical_address() != signer


def test_oracle_key_is_the_documented_derivation(cluster: LocalCluster) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    secret = derive_contract_sr25519(CLUSTER_SECRET, oracle.address, b"oracle-ecdsa")[:32]
    expected = keys.PrivateKey(secret).public_key.to_canonical_address()
    assert hex_bytes(oracle.query("signer_address").output) == expected


@pytest.mark.parametrize(
    ("path", "price"),
    [
        ("/int", 1_234_500_000_000),
        ("/nested", 1),  # only the top-level member counts; brackets in strings are skipped
        ("/exp", 15_000_000_000),
        ("/fine", 212_345_678),
    ],
)
def test_oracle_reads_json_numbers(cluster: LocalCluster, price_server: str, path: str, price: int) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    assert oracle.query("get_price", [price_server + path]).output["Ok"]["price"] == price


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/down", {"HttpStatus": 503}),
        ("/nowhere", {"HttpStatus": 404}),
        ("/missing", "InvalidBody"),
        ("/negative", "InvalidBody"),
        ("/html", "InvalidBody"),
    ],
)
def test_oracle_typed_errors(cluster: LocalCluster, price_server: str, path: str, error: object) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    result = oracle.query("get_price", [price_server + path])
    assert result.reverted  # ink!: a message returning Err sets REVERT
    assert result.output == {"Err": error}


def test_oracle_unreachable_host_is_an_http_status(cluster: LocalCluster) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    # pink answers a request it could not send with 523; the policy refuses private addresses.
    result = oracle.query("get_price", ["http://10.255.255.1:9/"])
    assert result.output["Err"]["HttpStatus"] in (523, 524)


def test_oracle_in_a_transaction_returns_query_only(cluster: LocalCluster, price_server: str) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    result = oracle.transact("get_price", [price_server + "/eth"])
    assert result.raw.error is None and result.reverted
    assert result.output == {"Err": "QueryOnly"}


def test_oracle_signer_is_stable_per_cluster_and_contract(egress: HttpxEgress) -> None:
    first = make_cluster(egress=egress).deploy(bundle("oracle"), "new")
    again = make_cluster(egress=egress).deploy(bundle("oracle"), "new")
    other_cluster = make_cluster(OTHER_SECRET, egress).deploy(bundle("oracle"), "new")
    assert first.address == again.address
    assert first.query("signer_address").output == again.query("signer_address").output
    assert first.query("signer_address").output != other_cluster.query("signer_address").output


# --- key custody ------------------------------------------------------------------------------


def custody_secret(contract: Contract, salt: bytes, secret: bytes = CLUSTER_SECRET) -> bytes:
    return derive_contract_sr25519(secret, contract.address, salt)


def test_key_custody_signature_verifies_with_sr25519(cluster: LocalCluster) -> None:
    custody = cluster.deploy(bundle("key_custody"), "new")  # owner: alice
    public = hex_bytes(custody.query("public_key").output)
    assert public == sr25519.public_from_secret_key(custody_secret(custody, b"key_custody/sr25519"))

    message = b"transfer 10 to bob"
    result = custody.query("sign", [message])
    assert result.success, result.raw.error
    signature = hex_bytes(result.output["Ok"])
    assert len(signature) == 64
    assert sr25519.verify(signature, message, public)
    assert not sr25519.verify(signature, message + b"!", public)

    assert custody.query("verify", [message, signature]).output is True
    assert custody.query("verify", [message + b"!", signature]).output is False
    assert custody.query("verify", [message, signature[:63]]).output is False  # no trap on bad length


def test_key_custody_refuses_non_owner_and_transactions(cluster: LocalCluster) -> None:
    custody = cluster.deploy(bundle("key_custody"), "new", caller="alice")
    assert cluster.account(custody.query("owner").output) == ALICE
    refused = custody.query("sign", [b"hi"], caller="bob")
    assert refused.reverted and refused.output == {"Err": "NotOwner"}
    in_tx = custody.transact("sign", [b"hi"])
    assert in_tx.reverted and in_tx.output == {"Err": "QueryOnly"}


def test_key_custody_ecdsa_public_key(cluster: LocalCluster) -> None:
    custody = cluster.deploy(bundle("key_custody"), "new")
    secret = custody_secret(custody, b"key_custody/ecdsa")[:32]
    expected = keys.PrivateKey(secret).public_key.to_compressed_bytes()
    assert hex_bytes(custody.query("ecdsa_public_key").output) == expected


def test_key_custody_never_stores_or_returns_a_secret(cluster: LocalCluster) -> None:
    custody = cluster.deploy(bundle("key_custody"), "new")
    outputs = [
        custody.query(label, args).raw.data
        for label, args in [("public_key", []), ("ecdsa_public_key", []), ("owner", []), ("sign", [b"m"])]
    ]
    secrets = [custody_secret(custody, b"key_custody/sr25519"), custody_secret(custody, b"key_custody/ecdsa")]
    secrets += [s[:32] for s in secrets] + [s[32:] for s in secrets]  # scalar and nonce halves

    info = cluster.runtime.records.contract(custody.address)
    assert info is not None
    own = list(cluster.runtime.state.iter_prefix(STORAGE + custody.address + info.trie_id))
    # The contract's whole storage is its root: the owner, nothing else.
    assert [(key[-4:], value) for key, value in own] == [(bytes(4), ALICE)]
    everything = [value for _, value in cluster.runtime.state.iter_prefix(b"")] + outputs
    for secret in secrets:
        assert not any(secret in blob for blob in everything)


def test_same_cluster_secret_gives_same_keys_across_clusters() -> None:
    a = make_cluster().deploy(bundle("key_custody"), "new")
    b = make_cluster().deploy(bundle("key_custody"), "new")
    c = make_cluster(OTHER_SECRET).deploy(bundle("key_custody"), "new")
    assert a.address == b.address == c.address
    for label in ("public_key", "ecdsa_public_key"):
        assert a.query(label).output == b.query(label).output
        assert a.query(label).output != c.query(label).output


# --- cache user -------------------------------------------------------------------------------


def test_cache_user_in_queries_uses_the_cache_directly(cluster: LocalCluster) -> None:
    cache_user = cluster.deploy(bundle("cache_user"), "new")
    assert cache_user.query("get", [b"k"]).output is None
    assert cache_user.query("set", [b"k", b"v1"]).output == {"Ok": None}  # a query writes at once
    assert cache_user.query("get", [b"k"]).output == "0x" + b"v1".hex()
    assert cache_user.query("remove", [b"k"]).output == "0x" + b"v1".hex()
    assert cache_user.query("get", [b"k"]).output is None
    cache_user.query("set", [b"k", b"v2"])
    cache_user.query("set_expiration", [b"k", 0])  # 0 expires it now
    assert cache_user.query("get", [b"k"]).output is None


def test_cache_user_in_transactions_goes_through_cache_op_events(cluster: LocalCluster) -> None:
    cache_user = cluster.deploy(bundle("cache_user"), "new")
    cache_user.query("set", [b"k", b"old"])

    result = cache_user.transact("set", [b"k", b"new"])
    assert result.success and result.output == {"Ok": None}
    (record,) = result.raw.pink_events
    assert record.event is not None and record.event.kind is PinkEventKind.CACHE_OP
    assert (record.event.cache_op, record.event.key, record.event.value) == (CacheOpKind.SET, b"k", b"new")
    assert record.status is Status.APPLIED  # applied once the transaction committed
    assert result.events == []  # CacheOp events are private, not published
    assert cache_user.query("get", [b"k"]).output == "0x" + b"new".hex()

    # Reads answer None in a transaction (the cache differs between workers).
    assert cache_user.transact("get", [b"k"]).output is None
    removed = cache_user.transact("remove", [b"k"])
    assert removed.output is None
    assert [r.event.cache_op for r in removed.raw.pink_events if r.event] == [CacheOpKind.REMOVE]
    assert cache_user.query("get", [b"k"]).output is None

    cache_user.query("set", [b"k", b"again"])
    expire = cache_user.transact("set_expiration", [b"k", 0])
    assert [(r.event.cache_op, r.event.expiration) for r in expire.raw.pink_events if r.event] == [
        (CacheOpKind.SET_EXPIRATION, 0)
    ]
    assert cache_user.query("get", [b"k"]).output is None


def test_cache_user_quota_exceeded_is_a_typed_error(cluster: LocalCluster) -> None:
    cluster.runtime.services.cache = LocalCache(max_bytes=8)
    cache_user = cluster.deploy(bundle("cache_user"), "new")
    assert cache_user.query("set", [b"k", b"1234567"]).output == {"Ok": None}
    too_big = cache_user.query("set", [b"k2", b"1234567"])
    assert too_big.reverted and too_big.output == {"Err": "StorageQuotaExceeded"}


# --- system contract ---------------------------------------------------------------------------


def blake2_selector(text: str) -> str:
    return "0x" + hashlib.blake2b(text.encode(), digest_size=32).digest()[:4].hex()


def test_system_selectors_are_pinks() -> None:
    spec = json.loads((EXAMPLES / "system" / "system.json").read_text())["spec"]
    selectors = {m["label"]: m["selector"] for m in spec["messages"]}
    # Known values of pink's SystemRef (`#[ink::trait_definition(namespace = "pink_system")]`).
    assert selectors["System::get_driver"] == "0x2740cf0a"
    assert selectors["System::version"] == "0x87c98a8d"
    assert selectors["ContractDeposit::change_deposit"] == "0xa24bcb44"
    for label, selector in selectors.items():
        if label.startswith("System::"):
            assert selector == blake2_selector("pink_system::" + label)
    assert [c["selector"] for c in spec["constructors"]] == ["0xed4b9d1b"]
    chain_extension = spec["environment"]["chainExtension"]["type"]
    types = json.loads((EXAMPLES / "system" / "system.json").read_text())["types"]
    assert types[chain_extension]["type"]["path"] == ["pink_extension", "chain_extension", "PinkExt"]


@pytest.fixture()
def system(cluster: LocalCluster) -> Contract:
    """The cluster's system contract: installed at genesis by alice, the cluster owner."""
    system = cluster.system_contract
    expected = json.loads(bundle("system").read_text())["source"]["hash"]
    assert system.metadata.code_hash is not None and "0x" + system.metadata.code_hash.hex() == expected
    return system


def test_driver_lookup_from_another_contract(cluster: LocalCluster, system: Contract) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    feed = cluster.deploy(bundle("cache_user"), "new")
    assert oracle.query("driver", ["PriceFeed"]).output is None
    assert system.transact("System::set_driver", ["PriceFeed", feed.address]).output == {"Ok": None}
    # oracle → system_contract_id (chain extension) → seal1.call System::get_driver
    assert cluster.account(oracle.query("driver", ["PriceFeed"]).output) == feed.address


def test_driver_lookup_without_system_contract_fails() -> None:
    cluster = make_cluster(system=False)
    oracle = cluster.deploy(bundle("oracle"), "new")
    result = oracle.query("driver", ["PriceFeed"])
    assert result.raw.error is not None and "SystemContractMissing" in str(result.raw.error)


def test_system_driver_registry_history_and_permissions(cluster: LocalCluster, system: Contract) -> None:
    first, second = (cluster.deploy(bundle("cache_user"), "new", salt=s).address for s in (b"1", b"2"))
    assert cluster.account(system.query("owner").output) == ALICE

    denied = system.transact("System::set_driver", ["Feed", first], caller="bob")
    assert denied.reverted and denied.output == {"Err": "PermisionDenied"}
    assert system.transact("System::grant_admin", [BOB], caller="bob").output == {"Err": "PermisionDenied"}
    granted = system.transact("System::grant_admin", [BOB])
    assert granted.output == {"Ok": None}
    assert [e.label for e in granted.events if isinstance(e, DecodedEvent)] == ["AdministratorAdded"]
    assert system.query("System::is_admin", [BOB]).output is True

    set_first = system.transact("System::set_driver", ["Feed", first], caller="bob")  # admins may
    assert set_first.output == {"Ok": None}
    block = cluster.block.number
    (changed,) = set_first.events
    assert isinstance(changed, DecodedEvent)
    assert changed.label == "DriverChanged" and changed.args["name"] == "Feed" and changed.args["previous"] is None
    system.transact("System::set_driver", ["Feed", second])
    number, current = system.query("System::get_driver2", ["Feed"]).output
    assert cluster.account(current) == second and number == block + 1
    ((old_block, old),) = system.query("System::driver_history", ["Feed"]).output
    assert (old_block, cluster.account(old)) == (block, first)
    assert system.query("System::driver_history", ["Other"]).output is None


def test_system_environment_queries(cluster: LocalCluster, system: Contract) -> None:
    oracle = cluster.deploy(bundle("oracle"), "new")
    assert system.query("System::version").output == [1, 0, 0]
    assert system.query("System::total_balance_of", [ALICE]).output == cluster.balance("alice") <= DEV_ENDOWMENT
    assert system.query("System::free_balance_of", [ALICE]).output <= DEV_ENDOWMENT
    code_hash = oracle.metadata.code_hash
    assert code_hash is not None
    assert hex_bytes(system.query("System::code_hash", [oracle.address]).output) == code_hash
    assert system.query("System::code_hash", [BOB]).output is None
    assert system.query("System::code_exists", [code_hash, "Ink"]).output is True
    assert system.query("System::code_exists", [bytes(32), "Ink"]).output is False


def test_system_sidevm_operations_are_refused_clearly(cluster: LocalCluster, system: Contract) -> None:
    args = [cluster.account("bob"), bytes(32)]
    assert system.transact("System::deploy_sidevm_to", args).output == {"Err": "PermisionDenied"}
    system.transact("System::grant_admin", [ALICE])
    result = system.transact("System::deploy_sidevm_to", args)
    assert result.reverted and result.output == {"Err": "ConditionNotMet"}
    assert "no SideVM" in result.debug_message


def test_system_pink_events(cluster: LocalCluster, system: Contract) -> None:
    """The system contract's messages emit pink's events, and the block's end acts on them
    (tests/test_cluster_system.py covers what each one does)."""
    logger = cluster.deploy(bundle("cache_user"), "new").address
    result = system.transact("System::set_driver", ["PinkLogger", logger])
    (record,) = result.raw.pink_events
    assert record.event is not None and record.event.kind is PinkEventKind.SET_LOG_HANDLER
    assert record.event.contract == logger and record.status is Status.APPLIED
    assert cluster.runtime.settings.log_handler() == logger
    system.transact("System::grant_admin", [ALICE])
    weight = system.transact("System::set_contract_weight", [logger, 7])
    (record,) = weight.raw.pink_events
    assert record.event is not None and (record.event.kind, record.event.weight) == (
        PinkEventKind.SET_CONTRACT_WEIGHT, 7)
    assert record.status is Status.APPLIED and cluster.runtime.settings.weight(logger) == 7
    hook = system.transact("System::set_hook", ["OnBlockEnd", logger, 0x12345678, 10**9])
    (record,) = hook.raw.pink_events
    assert record.event is not None and (record.event.kind, record.event.contract, record.event.selector) == (
        PinkEventKind.SET_HOOK, logger, 0x12345678)
    assert record.status is Status.APPLIED
    # cache_user has no message 0x12345678: its hook reverts (LangError) at the next block's end,
    # which is recorded; the block itself goes through.
    (run,) = cluster.produce_block().hooks
    assert not run.success and run.error == "reverted with 0x0101"


def test_system_change_deposit_is_for_the_contract_itself(system: Contract) -> None:
    result = system.transact("ContractDeposit::change_deposit", [ALICE, 10])
    assert result.reverted and result.output == {"Err": {"SystemError": "PermisionDenied"}}


def test_system_upgrade_paths(cluster: LocalCluster, system: Contract) -> None:
    assert system.transact("System::upgrade_system_contract", caller="bob").output == {"Err": "PermisionDenied"}
    # No newer system code known to the worker: CodeNotFound, as pink's contract answers.
    assert system.transact("System::upgrade_system_contract").output == {"Err": "CodeNotFound"}
    # The latest code is the running one: nothing to do.
    own_code = system.metadata.code_hash
    cluster.runtime.services.latest_system_code = own_code  # type: ignore[attr-defined]
    assert system.transact("System::upgrade_system_contract").output == {"Ok": None}
    # do_upgrade is for the contract itself (re-entered from upgrade_system_contract).
    assert system.transact("System::do_upgrade", [[0, 9, 0]]).output == {"Err": "PermisionDenied"}
