"""Run raw wasm contracts in an in-memory cluster, one line per step.

Owns: :class:`WatHarness` (a ``Cluster`` over a ``MemoryBackend`` with funded :data:`ALICE`
and :data:`BOB`, a block counter, ``upload``/``deploy``/``call``) and :func:`wat`, which wraps
contract bodies in the boilerplate (imports, ``env.memory``, both exports). Imports are
inferred: ``(call $seal1.get_storage ...)`` in a body imports ``seal1.get_storage`` with its
exact signature from ``wasm.abi.HOST_FUNCTIONS``::

    h = WatHarness()
    addr = h.deploy(wat(ret(0, 4), extra=data(0, b"pong")))
    assert h.call(addr).data == b"pong"

Must not: be imported by product code (``tests/test_layers.py`` enforces it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import wasmtime

from phat_runtime.errors import PhatError
from phat_runtime.pink.extension import ChainExtensionRegistry
from phat_runtime.runtime.cluster import Cluster, ExecResult
from phat_runtime.runtime.execution import BlockContext
from phat_runtime.state import MemoryBackend
from phat_runtime.types import AccountId, CodeHash, ExecutionMode
from phat_runtime.wasm.abi import HOST_FUNCTIONS
from phat_runtime.wasm.engine import Engine

ALICE = AccountId(b"alice".ljust(32, b"\0"))
BOB = AccountId(b"bob".ljust(32, b"\0"))
#: What ALICE and BOB own when a harness starts (plenty for any test transfer).
INITIAL_BALANCE = 10**18
#: The first block, and how far each new block moves the clock.
GENESIS_BLOCK = BlockContext(1, 1_700_000_000_000)
BLOCK_TIME_MS = 6_000
#: cargo-contract's default memory: 2 initial pages, at most 16.
MEMORY = "(memory 2 16)"

_WASM_MAGIC = b"\0asm"
# `$seal1.get_storage` in a body means "import seal1.get_storage under that name".
_FUNC_REF = re.compile(r"\$(seal[0-9])\.([A-Za-z0-9_]+)")
_ENGINE: Engine | None = None


def _shared_engine() -> Engine:
    # One engine (one epoch thread, one module cache) for every harness in the process.
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
    return _ENGINE


def import_decl(qualified: str) -> str:
    """``"seal0.input"`` → its ``(import ...)`` line, the function named ``$seal0.input``."""
    module, name = qualified.split(".", 1)
    spec = HOST_FUNCTIONS[(module, name)]
    params = f" (param {' '.join(spec.params)})" if spec.params else ""
    results = f" (result {' '.join(spec.results)})" if spec.results else ""
    return f'(import "{module}" "{name}" (func ${qualified}{params}{results}))'


def wat(
    call: str = "",
    *,
    deploy: str = "",
    imports: Iterable[str] = (),
    extra: str = "",
    memory: str = MEMORY,
) -> str:
    """A whole contract module: ``call``/``deploy`` are the bodies of the two entry points.

    Every ``$sealN.name`` used in the bodies or ``extra`` (data segments, helper functions) is
    imported; ``imports`` adds more (``"seal0.input"`` form), e.g. to link an unused function.
    """
    found = (f"{m}.{n}" for m, n in _FUNC_REF.findall(call + deploy + extra))
    decls = "\n  ".join(import_decl(q) for q in dict.fromkeys([*imports, *found]))
    return (
        f'(module\n  {decls}\n  (import "env" "memory" {memory})\n'
        f'  (func (export "deploy") {deploy})\n  (func (export "call") {call})\n  {extra})'
    )


def expr(value: int | str) -> str:
    """An i32 operand: ints become ``(i32.const n)``, strings are WAT expressions already."""
    return f"(i32.const {value})" if isinstance(value, int) else value


def ret(ptr: int | str, length: int | str, flags: int = 0) -> str:
    """``seal_return`` of ``length`` bytes at ``ptr`` (ints or WAT expressions)."""
    return f"(call $seal0.seal_return (i32.const {flags}) {expr(ptr)} {expr(length)})"


def data(offset: int, payload: bytes) -> str:
    """A data segment placing ``payload`` at ``offset`` of the imported memory."""
    escaped = "".join(f"\\{byte:02x}" for byte in payload)
    return f'(data (i32.const {offset}) "{escaped}")'


def to_wasm(code: str | bytes) -> bytes:
    """WAT text → wasm bytes; wasm bytes pass through."""
    return bytes(wasmtime.wat2wasm(code)) if isinstance(code, str) else bytes(code)


class DeployFailed(PhatError, AssertionError):
    """``WatHarness.deploy``: the constructor reverted or failed. ``result`` says how."""

    def __init__(self, result: ExecResult) -> None:
        why = repr(result.error) if result.error else f"reverted with 0x{result.data.hex()}"
        super().__init__(f"constructor did not succeed: {why}")
        self.result = result


class WatHarness:
    """A fresh cluster with funded ALICE and BOB. ``extension`` None: every pink function."""

    def __init__(self, extension: ChainExtensionRegistry | None = None) -> None:
        self.cluster = Cluster(MemoryBackend(), engine=_shared_engine(), extension=extension)
        self.block = GENESIS_BLOCK
        for account in (ALICE, BOB):
            self.cluster.records.set_balance(account, INITIAL_BALANCE)

    def next_block(self, count: int = 1) -> BlockContext:
        """Advance the block number by ``count`` and the clock by ``count`` block times."""
        number, now = self.block.number + count, self.block.timestamp_ms + count * BLOCK_TIME_MS
        self.block = BlockContext(number, now)
        return self.block

    def upload(self, code: str | bytes) -> CodeHash:
        """Upload WAT text or wasm bytes (owner ALICE); returns the code hash."""
        return self.cluster.upload_code(to_wasm(code), ALICE)

    def _code_hash(self, code: str | bytes) -> CodeHash:  # 32 non-wasm bytes: a code hash
        if isinstance(code, bytes) and len(code) == 32 and not code.startswith(_WASM_MAGIC):
            return CodeHash(code)
        return self.upload(code)

    def instantiate(
        self,
        code: str | bytes,
        input: bytes = b"",
        *,
        value: int = 0,
        caller: AccountId = ALICE,
        salt: bytes = b"",
        mode: ExecutionMode = ExecutionMode.TRANSACTION,
        gas_limit: int | None = None,
    ) -> ExecResult:
        """Run the constructor of ``code`` (WAT, wasm or a code hash); any outcome returned."""
        return self.cluster.instantiate(
            caller, self._code_hash(code), input, salt=salt, value=value, mode=mode,
            block=self.block, gas_limit=gas_limit,
        )

    def deploy(
        self,
        code: str | bytes,
        input: bytes = b"",
        *,
        value: int = 0,
        caller: AccountId = ALICE,
        salt: bytes = b"",
    ) -> AccountId:
        """Instantiate in a transaction; the new address, or :class:`DeployFailed`."""
        result = self.instantiate(code, input, value=value, caller=caller, salt=salt)
        if not result.success or result.contract is None:
            raise DeployFailed(result) from result.error
        return result.contract

    def call(
        self,
        address: bytes,
        input: bytes = b"",
        *,
        mode: ExecutionMode = ExecutionMode.QUERY,
        value: int = 0,
        caller: AccountId = ALICE,
        gas_limit: int | None = None,
    ) -> ExecResult:
        """Call ``address`` with raw input bytes; a query unless ``mode`` says otherwise."""
        return self.cluster.call(
            caller, address, input, value=value, mode=mode, block=self.block, gas_limit=gas_limit
        )

    # --- committed state ------------------------------------------------------------------
    def balance(self, account: bytes) -> int:
        return self.cluster.records.balance(account)

    def is_contract(self, address: bytes) -> bool:
        return self.cluster.records.contract(address) is not None

    def storage(self, address: bytes, key: bytes) -> bytes | None:
        """The committed value under ``key`` of the contract at ``address``."""
        info = self.cluster.records.contract(address)
        if info is None:
            raise LookupError(f"no contract at 0x{address.hex()}")
        return self.cluster.records.storage_get(address, info.trie_id, key)
