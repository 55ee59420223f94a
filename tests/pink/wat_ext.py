"""A WAT "script" contract that drives the chain extension, and the harness around it.

The contract's input is ``flags u32`` followed by commands, each ``kind u32 ‖ a u32 ‖ b u32 ‖
len u32 ‖ payload[len]``:

- kind 0 / 1: ``seal0.call_chain_extension`` / its alias ``seal_call_chain_extension`` with
  func_id ``a``, input ``payload``, an output buffer of capacity ``b``; appends
  ``status u32 ‖ out_len u32 ‖ output``;
- kind 2: ``seal0.deposit_event`` with topics = ``payload[:a]`` (SCALE ``Vec<[u8; 32]>``) and
  data = ``payload[a:]``; appends nothing;
- kind 3: ``seal0.debug_message(payload)``; appends its u32 result;
- kind 4: ``seal1.call`` with flags ``a`` of callee ``payload[:32]`` with input ``payload[32:]``
  and an output capacity ``b``; appends ``code u32 ‖ out_len u32 ‖ output``.

It ends with ``seal_return(flags, results)``, so ``flags = 1`` reverts after doing it all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from phat_runtime.codec.scale import Writer
from phat_runtime.crypto.kdf import sr25519_pair_from_seed
from phat_runtime.pink.cache import LocalCache
from phat_runtime.pink.logs import LogStore
from phat_runtime.pink.services import PinkServices
from phat_runtime.pink.structs import PINK_EVENT_TOPIC
from phat_runtime.runtime.cluster import ExecResult
from phat_runtime.testing.harness import ALICE, WatHarness, wat
from phat_runtime.types import AccountId, ExecutionMode

IN_LEN, ZERO_U128, IN, CAP, OUT = 0x0F00, 0x0E00, 0x1000, 0x40000, 0x50000
DEFAULT_CAP = 16 * 1024  # ink! 4's static buffer
MODES = [ExecutionMode.QUERY, ExecutionMode.TRANSACTION, ExecutionMode.ESTIMATE]
DETERMINISTIC = [ExecutionMode.TRANSACTION, ExecutionMode.ESTIMATE]
#: A fixed cluster key for the tests (any 64-byte sr25519 secret).
CLUSTER_SECRET = sr25519_pair_from_seed(bytes(range(32)))[1]

_BODY = f"""
(local $p i32) (local $end i32) (local $o i32) (local $kind i32) (local $a i32) (local $b i32)
(local $len i32) (local $pl i32)
(i32.store (i32.const {IN_LEN}) (i32.const {CAP}))
(call $seal0.input (i32.const {IN}) (i32.const {IN_LEN}))
(local.set $end (i32.add (i32.const {IN}) (i32.load (i32.const {IN_LEN}))))
(local.set $p (i32.const {IN + 4}))
(local.set $o (i32.const {OUT}))
(block $done (loop $next
  (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
  (local.set $kind (i32.load (local.get $p)))
  (local.set $a (i32.load offset=4 (local.get $p)))
  (local.set $b (i32.load offset=8 (local.get $p)))
  (local.set $len (i32.load offset=12 (local.get $p)))
  (local.set $pl (i32.add (local.get $p) (i32.const 16)))
  (if (i32.le_u (local.get $kind) (i32.const 1)) (then
    (i32.store offset=4 (local.get $o) (local.get $b))
    (if (i32.eqz (local.get $kind))
      (then (i32.store (local.get $o) (call $seal0.call_chain_extension (local.get $a) (local.get $pl)
        (local.get $len) (i32.add (local.get $o) (i32.const 8)) (i32.add (local.get $o) (i32.const 4)))))
      (else (i32.store (local.get $o) (call $seal0.seal_call_chain_extension (local.get $a) (local.get $pl)
        (local.get $len) (i32.add (local.get $o) (i32.const 8)) (i32.add (local.get $o) (i32.const 4))))))
    (local.set $o (i32.add (local.get $o) (i32.add (i32.const 8) (i32.load offset=4 (local.get $o)))))))
  (if (i32.eq (local.get $kind) (i32.const 2)) (then
    (call $seal0.deposit_event (local.get $pl) (local.get $a) (i32.add (local.get $pl) (local.get $a))
      (i32.sub (local.get $len) (local.get $a)))))
  (if (i32.eq (local.get $kind) (i32.const 3)) (then
    (i32.store (local.get $o) (call $seal0.debug_message (local.get $pl) (local.get $len)))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))))
  (if (i32.eq (local.get $kind) (i32.const 4)) (then
    (i32.store offset=4 (local.get $o) (local.get $b))
    (i32.store (local.get $o) (call $seal1.call (local.get $a) (local.get $pl) (i64.const 0)
      (i32.const {ZERO_U128}) (i32.add (local.get $pl) (i32.const 32)) (i32.sub (local.get $len) (i32.const 32))
      (i32.add (local.get $o) (i32.const 8)) (i32.add (local.get $o) (i32.const 4))))
    (if (i32.and (i32.ne (i32.load (local.get $o)) (i32.const 0)) (i32.ne (i32.load (local.get $o)) (i32.const 2)))
      (then (i32.store offset=4 (local.get $o) (i32.const 0))))
    (local.set $o (i32.add (local.get $o) (i32.add (i32.const 8) (i32.load offset=4 (local.get $o)))))))
  (local.set $p (i32.add (local.get $pl) (local.get $len)))
  (br $next)))
(call $seal0.seal_return (i32.load (i32.const {IN})) (i32.const {OUT}) (i32.sub (local.get $o) (i32.const {OUT})))
"""

SCRIPT_CONTRACT = wat(_BODY, memory="(memory 16 16)")


@dataclass(frozen=True)
class Out:
    """What one command gave back: a status / return code and the output bytes."""

    status: int
    output: bytes = b""


@dataclass
class Script:
    commands: list[tuple[int, int, int, bytes]] = field(default_factory=list)

    def ext(self, func_id: int, payload: bytes = b"", *, cap: int = DEFAULT_CAP, alias: bool = False) -> Script:
        self.commands.append((1 if alias else 0, func_id, cap, payload))
        return self

    def event(self, data: bytes, topics: list[bytes] | None = None) -> Script:
        blob = b"" if topics is None else Writer().vec(topics, Writer.raw).finish()
        self.commands.append((2, len(blob), 0, blob + data))
        return self

    def pink_event(self, data: bytes) -> Script:
        return self.event(data, [PINK_EVENT_TOPIC])

    def debug(self, text: str) -> Script:
        self.commands.append((3, 0, 0, text.encode()))
        return self

    def call(self, callee: bytes, script: Script, *, revert: bool = False, cap: int = DEFAULT_CAP) -> Script:
        self.commands.append((4, 0, cap, callee + script.encode(revert=revert)))
        return self

    def encode(self, *, revert: bool = False) -> bytes:
        out = struct.pack("<I", 1 if revert else 0)
        for kind, a, b, payload in self.commands:
            out += struct.pack("<IIII", kind, a, b, len(payload)) + payload
        return out

    def parse(self, data: bytes) -> list[Out]:
        results, pos = [], 0
        for kind, *_ in self.commands:
            if kind == 2:
                continue
            if kind == 3:
                results.append(Out(struct.unpack_from("<I", data, pos)[0]))
                pos += 4
                continue
            status, length = struct.unpack_from("<II", data, pos)
            results.append(Out(status, data[pos + 8 : pos + 8 + length]))
            pos += 8 + length
        assert pos == len(data), "the contract returned more than the script asked for"
        return results


class FakeClock:
    """An injectable clock (seconds) that only moves when told to."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class PinkHarness(WatHarness):
    """A WatHarness whose cluster has pink services (key, cache, logs) and a script contract."""

    def __init__(self, services: PinkServices | None = None) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cluster.services = services or PinkServices(
            cluster_secret=CLUSTER_SECRET,
            cache=LocalCache(clock=self.clock),
            logs=LogStore(clock=self.clock),
            clock=self.clock,
        )
        self.script = self.deploy(SCRIPT_CONTRACT)

    @property
    def services(self) -> PinkServices:
        return self.cluster.services

    @property
    def cache(self) -> LocalCache:
        assert isinstance(self.services.cache, LocalCache)
        return self.services.cache

    def run(
        self,
        script: Script,
        mode: ExecutionMode = ExecutionMode.QUERY,
        *,
        revert: bool = False,
        contract: AccountId | None = None,
        caller: AccountId = ALICE,
    ) -> tuple[ExecResult, list[Out]]:
        """Run ``script`` on the script contract; the raw result and each command's output
        (empty if the execution failed)."""
        result = self.call(contract or self.script, script.encode(revert=revert), mode=mode, caller=caller)
        outs = script.parse(result.data) if result.error is None else []
        return result, outs

    def one(self, func_id: int, payload: bytes = b"", mode: ExecutionMode = ExecutionMode.QUERY,
            **kwargs: object) -> Out:
        """Call one function and return its output; fails the test if the execution failed."""
        result, outs = self.run(Script().ext(func_id, payload, **kwargs), mode)  # type: ignore[arg-type]
        assert result.error is None, result.error
        return outs[0]

    def failure(self, func_id: int, payload: bytes = b"", mode: ExecutionMode = ExecutionMode.QUERY) -> str:
        """Call one function that must fail the contract call; returns the error's kind."""
        result, _ = self.run(Script().ext(func_id, payload), mode)
        assert result.error is not None, f"expected the call to fail, got {result.data.hex()}"
        return result.error.kind


def blob(value: bytes) -> bytes:
    return Writer().blob(value).finish()


def string(value: str) -> bytes:
    return Writer().string(value).finish()
