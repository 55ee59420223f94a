"""JavaScript for ``js_eval`` (id 24): pink's SideVM QuickJS runner, on quickjs-ng in process.

Semantics follow Phala's ``phat-quickjs`` runner (``js_eval.rs``): the codes run in order in
one fresh context with ``scriptArgs`` = the string arguments; pending jobs (promises) run to
completion; the output is the global ``scriptOutput`` if the scripts set it, else the value of
the last code. Output mapping: undefined → Undefined, null → Null, string → String,
Uint8Array → Bytes, anything else → Other(``String(value)``), a thrown exception →
Exception(message). ``JsCode::Bytecode`` comes from another QuickJS build and is refused.

Each evaluation gets its own context (never shared between threads), a memory limit, a stack
limit and a time limit no larger than the caller's remaining wall-clock budget. QuickJS counts
that limit in CPU time (``clock()``), so on a loaded machine a runaway script may outlive the
wall-clock budget; the wasm engine's epoch deadline then ends the execution right after.

Must not: import anything that needs quickjs at module import time (it is optional).
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

from phat_runtime.codec.scale import Reader
from phat_runtime.pink.structs import JsCode, JsValue, JsValueTag

try:  # optional: a worker without it answers every js_eval with an Exception
    import quickjs as _quickjs
except ImportError:  # pragma: no cover - exercised by monkeypatching in tests
    _quickjs = None

quickjs: ModuleType | None = _quickjs

#: Heap of one evaluation.
MEMORY_LIMIT = 32 * 1024 * 1024
#: QuickJS's own stack guard (well below a thread's C stack).
MAX_STACK_SIZE = 256 * 1024
#: Ceiling on one evaluation even when the caller has more time left.
MAX_TIME_MS = 10_000
#: Part of the caller's remaining wall clock kept back so the contract can still use the answer
#: (a tenth, at least 100 ms, at most 1 s).
RESERVE_MIN_MS, RESERVE_MAX_MS, RESERVE_DIVISOR = 100, 1_000, 10

NOT_IN_TRANSACTION = JsValue(JsValueTag.EXCEPTION, "Js evaluation is not supported in transaction")
UNAVAILABLE = JsValue(
    JsValueTag.EXCEPTION,
    "Js evaluation is unavailable on this worker: the quickjs-ng package (module `quickjs`) is not installed",
)

# The last code runs through an indirect eval so its completion value stays in JS (Python
# would see both undefined and null as None); the classifier then reports it as JSON.
_RUN_LAST = "globalThis.__phat_last = (0, eval)(globalThis.__phat_src); void 0"
# Earlier codes run as plain scripts (shared global scope); their values are not needed, and
# converting them to Python could fail (lone surrogates) or be costly.
_DISCARD_VALUE = "\n;void 0"
_CLASSIFY = """(function () {
  var v = globalThis.scriptOutput;
  if (v === undefined) v = globalThis.__phat_last;
  if (v === undefined) return JSON.stringify(["undefined"]);
  if (v === null) return JSON.stringify(["null"]);
  if (typeof v === "string") return JSON.stringify(["string", v]);
  if (v instanceof Uint8Array) return JSON.stringify(["bytes", Array.from(v)]);
  return JSON.stringify(["other", String(v)]);
})()"""


def read_args(r: Reader) -> tuple[list[JsCode], list[str]]:
    """``(codes: Vec<JsCode>, args: Vec<String>)``."""
    return r.vec(JsCode.read), r.vec(Reader.string)


def _text(value: str) -> str:
    # JS strings may hold lone surrogates; SCALE String must be UTF-8.
    return value.encode("utf-8", "replace").decode("utf-8")


def _exception(message: str) -> JsValue:
    return JsValue(JsValueTag.EXCEPTION, _text(message.strip()))


def evaluate(codes: list[JsCode], args: list[str], *, time_limit_ms: int) -> JsValue:
    """Run ``codes`` with ``scriptArgs`` = ``args`` within ``time_limit_ms`` (the caller's
    remaining wall clock, less a reserve); never raises for anything the script does."""
    if quickjs is None:
        return UNAVAILABLE
    for code in codes:
        if code.source is None:
            size = len(code.bytecode or b"")
            return _exception(f"bytecode is not supported: this runtime evaluates JavaScript source only ({size} bytes of bytecode given)")
    reserve_ms = min(RESERVE_MAX_MS, max(RESERVE_MIN_MS, time_limit_ms // RESERVE_DIVISOR))
    budget_ms = min(time_limit_ms - reserve_ms, MAX_TIME_MS)
    if budget_ms <= 0:
        return _exception("Js evaluation timed out: no time left in this execution")
    deadline = time.monotonic() + budget_ms / 1000
    ctx = quickjs.Context()
    ctx.set_memory_limit(MEMORY_LIMIT)
    ctx.set_max_stack_size(MAX_STACK_SIZE)

    def run(source: str) -> Any:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ctx.set_time_limit(left)
        return ctx.eval(source)

    try:
        ctx.set("__phat_args", json.dumps(args))
        run("globalThis.scriptArgs = JSON.parse(globalThis.__phat_args); delete globalThis.__phat_args")
        for i, code in enumerate(codes):
            assert code.source is not None
            if i < len(codes) - 1:
                run(code.source + _DISCARD_VALUE)
            else:
                ctx.set("__phat_src", code.source)
                run(_RUN_LAST)
        while ctx.execute_pending_job():
            if time.monotonic() > deadline:
                raise TimeoutError
        kind, *value = json.loads(run(_CLASSIFY))
    except TimeoutError:
        return _exception(f"Js evaluation timed out after {budget_ms} ms")
    except quickjs.JSException as exc:
        message = str(exc)
        if message.startswith("InternalError: interrupted"):
            return _exception(f"Js evaluation timed out after {budget_ms} ms")
        return _exception(message)
    if kind == "undefined":
        return JsValue(JsValueTag.UNDEFINED)
    if kind == "null":
        return JsValue(JsValueTag.NULL)
    if kind == "bytes":
        return JsValue(JsValueTag.BYTES, bytes(value[0]))
    return JsValue(JsValueTag.STRING if kind == "string" else JsValueTag.OTHER, _text(value[0]))
