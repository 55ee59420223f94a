"""A cluster's genesis: the system contract it starts with.

Every cluster — :class:`~phat_runtime.runtime.local.LocalCluster`, the standalone worker,
chain clusters — installs a system contract at block 0, before anything else runs, so that
``system_contract_id`` answers from the first block and contracts may reach
``pink::system::SystemRef::instance()`` in their constructors. By default it is our own
``contracts_examples/system`` (pink's ``System`` trait, Phala's storage layout), shipped in the
package as :data:`DEFAULT_SYSTEM_CONTRACT`; the cluster owner may name any ink! system
contract bundle instead. Its constructor is the one labelled ``default`` (Phala's system
contract has only that), else the metadata's default constructor taking no arguments; the
cluster owner is the caller and so the system contract's owner. The address is stored in
the cluster's settings (``runtime/settings.py``), part of the state.

:func:`genesis` builds block 0 of a worker's cluster deterministically (timestamp 0, a block
hash of the cluster id, the system code and the owner), so every worker of the cluster starts
from the same state root; a store that already holds blocks is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from phat_runtime.codec.metadata import ContractMetadata
from phat_runtime.crypto.accounts import dev_account, to_ss58
from phat_runtime.crypto.hashing import blake2_256
from phat_runtime.errors import ConfigError
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.runtime.records import contract_address
from phat_runtime.types import AccountId

if TYPE_CHECKING:
    from phat_runtime.runtime.cluster import Cluster

#: Our system contract (a byte-identical copy of contracts_examples/system/system.contract,
#: kept current by contracts_examples/build.py and checked by tests/test_examples_build.py).
DEFAULT_SYSTEM_CONTRACT = Path(__file__).with_name("system.contract")
#: The constructor of pink's system contracts.
SYSTEM_CONSTRUCTOR = "default"
#: Block 0 of a worker's cluster: the same on every worker.
GENESIS_BLOCK = BlockContext(0, 0)

SystemSource = str | os.PathLike[str] | ContractMetadata


def load_system_contract(source: SystemSource | None = None, *, strict: bool = False) -> ContractMetadata:
    """The system contract's metadata with code: ``source`` (a bundle, ``.wasm`` + ``.json``,
    or loaded metadata), or ours when None."""
    if isinstance(source, ContractMetadata):
        metadata = source
    else:
        metadata = ContractMetadata.load(DEFAULT_SYSTEM_CONTRACT if source is None else source, strict=strict)
    if metadata.wasm is None:
        raise ConfigError(f"system contract {metadata.name!r} carries no code: pass its .contract bundle "
                          "or put the .wasm next to the .json")
    return metadata


def system_constructor_input(metadata: ContractMetadata) -> bytes:
    """The input of the system contract's constructor (see the module doc)."""
    labels = [c.label for c in metadata.constructors]
    spec = (metadata.constructor(SYSTEM_CONSTRUCTOR) if SYSTEM_CONSTRUCTOR in labels
            else metadata.default_constructor())
    if spec is None or spec.args:
        raise ConfigError(
            f"system contract {metadata.name!r} needs a constructor `default()` without arguments "
            f"(it has: {', '.join(labels) or 'none'})"
        )
    return metadata.encode_call(spec)


def install_system_contract(cluster: Cluster, metadata: ContractMetadata, owner: AccountId,
                            block: BlockContext) -> AccountId:
    """Upload and instantiate the system contract as ``owner`` and make it the cluster's
    system contract. Nothing is committed; raises ConfigError if the constructor fails."""
    assert metadata.wasm is not None
    code_hash = cluster.upload_code(metadata.wasm, owner)
    result = cluster.instantiate(owner, code_hash, system_constructor_input(metadata), block=block)
    if not result.success or result.contract is None:
        why = str(result.error) if result.error else f"reverted with 0x{result.data.hex()}"
        raise ConfigError(f"the system contract {metadata.name!r} failed to deploy at genesis: {why}")
    cluster.set_system_contract(result.contract)
    return result.contract


def genesis(cluster: Cluster, owner: bytes | None = None, system: SystemSource | None = None) -> AccountId | None:
    """Block 0 of a new cluster: install the system contract (``system``, or ours) owned by
    ``owner`` (None: the development account alice — name a real owner for anything but
    development), end and commit the block. A store that already holds blocks or a system
    contract (a restarted worker) is left alone. Returns the system contract's address."""
    existing = cluster.settings.system_contract()
    if cluster.checkpoint() is not None or existing is not None:
        if existing is not None:
            _check_same_genesis(cluster, existing, owner, system)
        return existing
    owner = AccountId(bytes(owner)) if owner is not None else dev_account("alice")
    metadata = load_system_contract(system)
    address = install_system_contract(cluster, metadata, AccountId(owner), GENESIS_BLOCK)
    cluster.end_block(GENESIS_BLOCK)
    assert metadata.code_hash is not None
    block_hash = blake2_256(b"phat_runtime/genesis/v1" + cluster.cluster_id + metadata.code_hash + owner)
    cluster.commit_block(GENESIS_BLOCK.number, block_hash)
    return address


def _check_same_genesis(cluster: Cluster, existing: AccountId, owner: bytes | None,
                        system: SystemSource | None) -> None:
    """A store made with one owner or system contract is not silently reopened as if it had
    been made with another: the settings named explicitly must be the ones of its block 0."""
    info = cluster.records.contract(existing)
    if info is None:
        return
    if owner is not None and bytes(owner) != bytes(info.deployer):
        raise ConfigError(
            f"this cluster's system contract is owned by {to_ss58(info.deployer)} (set when its state "
            f"was created), not by the cluster owner given, {to_ss58(bytes(owner))}: the owner cannot "
            "change after genesis — drop the owner setting or use a new data directory")
    if system is not None:
        code_hash = load_system_contract(system).code_hash
        assert code_hash is not None
        # The address is the genesis code's (it stays when System::upgrade_system_contract
        # replaces the code), so this holds after upgrades too.
        if contract_address(info.deployer, code_hash, cluster.cluster_id, b"") != existing:
            raise ConfigError(
                f"this cluster's system contract was installed from other code than the system "
                f"contract given (code hash 0x{code_hash.hex()}) when its state was created; it is "
                "replaced only by System::upgrade_system_contract — drop the system contract setting "
                "or use a new data directory")
