"""The example contracts in `contracts_examples/` are committed build outputs.

Always checked (no toolchain needed): every `.contract` bundle carries the `.wasm` it claims
(`source.hash` = blake2_256 of the code), each module has the shape pallet-contracts accepts
(exports exactly `call` and `deploy`, imports `env.memory` with at most 16 pages and only
host functions of our ABI table, with their exact signatures), and the ink! v4 metadata
loads in substrate-interface offline with ink!'s selector rule.

With the Debian wasm32 toolchain (`@pytest.mark.toolchain`): a rebuild is byte-identical
to what is committed, so the outputs can never drift from their sources.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from phat_runtime.wasm.abi import HOST_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "contracts_examples"
CONTRACTS = tuple(sorted(p.parent.name for p in EXAMPLES.glob("*/contract.toml")))
#: cargo-contract's (and pink fixtures') memory maximum.
MAX_MEMORY_PAGES = 16

#: What each example imports (ink! 4 names), pinned so that a change is a deliberate one.
#: Every ink! 4 contract needs the first set: input, return, payment check, debug output, root.
_BASE = {
    "seal0.input",
    "seal0.seal_return",
    "seal0.value_transferred",
    "seal0.debug_message",
    "seal1.get_storage",
    "seal2.set_storage",
}
EXPECTED_IMPORTS = {
    "flipper": _BASE,
    "token": _BASE | {"seal0.caller", "seal0.deposit_event", "seal0.hash_blake2_256"},
    "factory": _BASE | {"seal1.call", "seal1.instantiate"},
    # The pink examples reach pink through seal0.call_chain_extension.
    "ai_agent": _BASE
    | {
        "seal0.call_chain_extension",
        "seal0.caller",  # only the owner configures
        "seal0.address",  # answers are signed for this contract
        "seal0.hash_blake2_256",  # ... over the hashes of prompt and answer
    },
    "cache_user": _BASE | {"seal0.call_chain_extension"},
    "key_custody": _BASE | {"seal0.call_chain_extension", "seal0.caller"},
    "oracle": _BASE
    | {
        "seal0.call_chain_extension",
        "seal0.hash_keccak_256",  # the EIP-191 report hash
        "seal0.ecdsa_to_eth_address",  # the signer's address
        "seal1.call",  # System::get_driver
    },
    "ticker": _BASE
    | {
        "seal0.call_chain_extension",  # system_contract_id, balance_of, log
        "seal0.caller",
        "seal0.address",  # the hook's own address; only the contract itself may run it
        "seal0.block_number",
        "seal1.call",  # System::get_driver / set_hook / total_balance_of
    },
    "system": _BASE
    | {
        "seal0.call_chain_extension",
        "seal0.caller",
        "seal0.address",
        "seal0.block_number",
        "seal0.code_hash",
        "seal0.own_code_hash",
        "seal0.set_code_hash",
        "seal0.deposit_event",
        "seal0.hash_blake2_256",
        "seal1.call",
        "seal1.contains_storage",
    },
}


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def load(name: str, suffix: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / name / f"{name}.{suffix}").read_text())
    return doc


def wasm_of(name: str) -> bytes:
    return (EXAMPLES / name / f"{name}.wasm").read_bytes()


def module_of(name: str) -> wasmtime.Module:
    return wasmtime.Module(wasmtime.Engine(), wasm_of(name))


@pytest.fixture(scope="module")
def offline_substrate() -> Any:
    """substrate-interface without a node: `init_runtime` would connect, so it is a no-op."""
    from substrateinterface import SubstrateInterface

    substrate = SubstrateInterface(url="http://127.0.0.1:9", auto_discover=False, ss58_format=42)
    substrate.init_runtime = lambda *args, **kwargs: None
    return substrate


# --- bundles and code --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACTS)
def test_bundle_carries_the_committed_wasm(name: str) -> None:
    bundle = load(name, "contract")
    code = bytes.fromhex(bundle["source"]["wasm"].removeprefix("0x"))
    assert code == wasm_of(name)
    assert bundle["source"]["hash"] == "0x" + blake2_256(code).hex()


@pytest.mark.parametrize("name", CONTRACTS)
def test_json_is_the_bundle_without_code(name: str) -> None:
    bundle = load(name, "contract")
    del bundle["source"]["wasm"]
    assert load(name, "json") == bundle


@pytest.mark.parametrize("name", CONTRACTS)
def test_wasm_exports_exactly_call_and_deploy(name: str) -> None:
    exports = {e.name: e.type for e in module_of(name).exports}
    assert set(exports) == {"call", "deploy"}
    for ty in exports.values():
        assert isinstance(ty, wasmtime.FuncType)
        assert (list(ty.params), list(ty.results)) == ([], [])


@pytest.mark.parametrize("name", CONTRACTS)
def test_wasm_imports_only_known_host_functions(name: str) -> None:
    functions = set()
    memories = []
    for imp in module_of(name).imports:
        if isinstance(imp.type, wasmtime.MemoryType):
            memories.append((imp.module, imp.name, imp.type.limits))
            continue
        assert isinstance(imp.type, wasmtime.FuncType), f"{imp.module}.{imp.name}"
        spec = HOST_FUNCTIONS.get((imp.module, imp.name or ""))
        assert spec is not None, f"{name} imports unknown {imp.module}.{imp.name}"
        signature = ([str(p) for p in imp.type.params], [str(r) for r in imp.type.results])
        assert signature == (list(spec.params), list(spec.results)), f"{imp.module}.{imp.name}"
        functions.add(f"{imp.module}.{imp.name}")
    assert [(m, n) for m, n, _ in memories] == [("env", "memory")]
    limits = memories[0][2]
    assert limits.max is not None and limits.min <= limits.max <= MAX_MEMORY_PAGES
    assert functions == EXPECTED_IMPORTS[name]


# --- metadata ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACTS)
def test_metadata_is_ink_v4(name: str) -> None:
    meta = load(name, "json")
    assert meta["version"] == "4"
    spec = meta["spec"]
    assert spec["lang_error"]["displayName"] == ["ink", "LangError"]
    assert spec["environment"]["maxEventTopics"] == 4
    for ctor in spec["constructors"]:
        assert ctor["returnType"]["displayName"] == ["ink_primitives", "ConstructorResult"]
    for msg in spec["messages"]:
        assert msg["returnType"]["displayName"] == ["ink", "MessageResult"]
    assert meta["storage"]["root"]["root_key"] == "0x00000000"
    assert [t["id"] for t in meta["types"]] == list(range(len(meta["types"])))


@pytest.mark.parametrize("name", CONTRACTS)
def test_selectors_follow_the_ink_rule(name: str) -> None:
    """ink! 4: blake2_256(label)[:4]; a message of a namespaced trait hashes
    ``namespace::Trait::message`` (pink's System trait: namespace "pink_system"); an explicit
    ``selector`` in contract.toml wins."""
    import tomllib

    desc = tomllib.loads((EXAMPLES / name / "contract.toml").read_text())
    declared = {e["label"]: e for e in desc["constructors"] + desc["messages"]}
    spec = load(name, "json")["spec"]
    for entry in spec["constructors"] + spec["messages"]:
        source = declared[entry["label"]]
        if "selector" in source:
            expected = source["selector"].lower()
        else:
            preimage = f"{source['namespace']}::{entry['label']}" if "namespace" in source else entry["label"]
            expected = "0x" + blake2_256(preimage.encode())[:4].hex()
        assert entry["selector"] == expected, entry["label"]


@pytest.mark.parametrize("name", CONTRACTS)
def test_metadata_loads_in_substrate_interface(name: str, offline_substrate: Any) -> None:
    from substrateinterface.contracts import ContractMetadata

    raw = load(name, "json")
    metadata = ContractMetadata(load(name, "json"), offline_substrate)
    for msg in raw["spec"]["messages"]:
        # Every return type resolves in the registered portable types.
        offline_substrate.runtime_config.create_scale_object(
            metadata.get_return_type_string_for_message(msg["label"])
        )
        if not msg["args"]:
            data = metadata.generate_message_data(msg["label"], {})
            assert str(data) == msg["selector"]


def test_known_selectors_encode(offline_substrate: Any) -> None:
    """Spot-check against ink!'s own flipper and erc20 selectors."""
    from substrateinterface.contracts import ContractMetadata

    flipper = ContractMetadata(load("flipper", "json"), offline_substrate)
    assert str(flipper.generate_message_data("flip", {})) == "0x633aa551"
    assert str(flipper.generate_message_data("get", {})) == "0x2f865bd9"
    assert str(flipper.generate_constructor_data("new", {"init_value": True})) == "0x9bae9d5e01"
    token = ContractMetadata(load("token", "json"), offline_substrate)
    data = token.generate_message_data("transfer", {"to": "0x" + "02" * 32, "value": 5})
    assert str(data) == "0x84a15da1" + "02" * 32 + "05" + "00" * 15


# --- reproducibility -----------------------------------------------------------------------------


def _wasm_ld() -> str | None:
    found = shutil.which("wasm-ld")
    candidates = sorted(glob.glob("/usr/bin/wasm-ld-*") + glob.glob("/usr/lib/llvm-*/bin/wasm-ld"))
    return found or (candidates[-1] if candidates else None)


@pytest.mark.toolchain
@pytest.mark.skipif(
    not Path("/usr/bin/rustc").exists() or _wasm_ld() is None,
    reason="needs the Debian wasm32 toolchain (/usr/bin/rustc + wasm-ld): "
    "apt-get install -y rustc libstd-rust-dev-wasm32 lld",
)
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in CONTRACTS:
        for suffix in ("wasm", "json", "contract"):
            rel = Path(name) / f"{name}.{suffix}"
            assert (tmp_path / rel).read_bytes() == (EXAMPLES / rel).read_bytes(), (
                f"contracts_examples/{rel} is stale: run python contracts_examples/build.py"
            )
