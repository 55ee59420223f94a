"""pink chain-extension functions without a module of their own (ids 11, 12, 15–21, 23–25),
and the argument decoding every pink module here shares (HOST-ABI §3.1–§3.2).

We follow **pink runtime 1.2** semantics: ``runtime_version`` answers (1, 2), and the
functions that appeared in 1.1 (``batch_http_request``, ``current_event_chain_head``) and 1.2
(``js_eval``, ``worker_sgx_quote``) are served.

Arguments arrive as the SCALE encoding of the argument tuple and must decode completely
(pallet-contracts ``read_as_unbounded`` = ``decode_all``): bad bytes fail the call with
``DecodingFailed``. Non-deterministic answers (randomness, clock, worker key, JS, quotes) exist
only in the QUERY registry; the deterministic one returns pink's fixed values.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Callable
from typing import TypeVar

from phat_runtime.codec.scale import Reader, Writer
from phat_runtime.errors import ChainExtensionError
from phat_runtime.pink.extension import ChainExtensionRegistry, ExtensionEnv, decode
from phat_runtime.types import ExecutionMode

T = TypeVar("T")
Handler = Callable[[ExtensionEnv, bytes], tuple[int, bytes]]

#: Status of every function that does not use ``handle_status``.
OK = 0
#: pink runtime version we implement (``runtime_version``).
RUNTIME_VERSION = (1, 2)

GETRANDOM, IS_IN_TRANSACTION = 11, 12
SYSTEM_CONTRACT_ID, BALANCE_OF, WORKER_PUBKEY, UNTRUSTED_MILLIS = 15, 16, 17, 18
CODE_EXISTS, IMPORT_LATEST_SYSTEM_CODE, RUNTIME_VERSION_ID = 19, 20, 21
CURRENT_EVENT_CHAIN_HEAD, JS_EVAL, WORKER_SGX_QUOTE = 23, 24, 25


# --- shared argument / result helpers ----------------------------------------------------------


def encode_bytes(value: bytes) -> bytes:
    return Writer().blob(value).finish()


def encode_bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def encode_option_bytes(value: bytes | None) -> bytes:
    return Writer().option(value, Writer.blob).finish()


def bad_origin(what: str) -> ChainExtensionError:
    return ChainExtensionError(f"BadOrigin: only the cluster's system contract may call {what}", kind="BadOrigin")


def ensure_system(env: ExtensionEnv, what: str) -> None:
    """pink's ``ensure_system``: the calling contract must be the cluster's system contract."""
    system = env.services.system_contract
    if system is None or bytes(system) != bytes(env.contract):
        raise bad_origin(what)


# --- SGX quote --------------------------------------------------------------------------------


class AttestationType(enum.IntEnum):
    EPID = 0
    DCAP = 1


@dataclasses.dataclass(frozen=True)
class SgxQuote:
    """pink's ``SgxQuote { attestation_type, quote }`` (what ``worker_sgx_quote`` returns)."""

    attestation_type: AttestationType
    quote: bytes

    def encode(self) -> bytes:
        return Writer().u8(int(self.attestation_type)).blob(self.quote).finish()


def _as_quote(value: object) -> SgxQuote | None:
    """What a ``quote_provider`` may return: None, an SgxQuote, ``(type, quote)`` or raw DCAP bytes."""
    if value is None or isinstance(value, SgxQuote):
        return value
    if isinstance(value, bytes | bytearray):
        return SgxQuote(AttestationType.DCAP, bytes(value))
    if isinstance(value, tuple) and len(value) == 2:
        return SgxQuote(AttestationType(value[0]), bytes(value[1]))
    raise ChainExtensionError(f"InternalError: quote provider returned {type(value).__name__}", kind="InternalError")


# --- handlers ---------------------------------------------------------------------------------


def getrandom_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``getrandom(length: u8) -> Vec<u8>``: ``length`` bytes from the OS RNG.

    Availability: query only (empty vec in transactions)
    """
    length = decode(data, "getrandom(length: u8)", Reader.u8)
    return OK, encode_bytes(os.urandom(length))


def getrandom_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``getrandom`` outside queries: always an empty vec.

    Availability: query only (empty vec in transactions)
    """
    decode(data, "getrandom(length: u8)", Reader.u8)
    return OK, encode_bytes(b"")


def _is_in_transaction(answer: bool) -> Handler:
    def is_in_transaction(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
        """``is_in_transaction() -> bool``: false in queries, true otherwise (estimates too).

        Availability: query | transaction
        """
        return OK, encode_bool(answer)

    return is_in_transaction


def system_contract_id(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``system_contract_id() -> AccountId``; ``SystemContractMissing`` if none is deployed.

    Availability: query | transaction
    """
    system = env.services.system_contract
    if system is None:
        raise ChainExtensionError(
            "SystemContractMissing: this cluster has no system contract", kind="SystemContractMissing"
        )
    return OK, bytes(system)


def balance_of(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``balance_of(account: AccountId) -> (u128 total, u128 free)``, for any contract, as
    pink's chain_extension.rs serves it (no origin check; off-chain there are no locks, so
    total == free).

    Availability: query | transaction
    """
    account = decode(data, "balance_of(account)", lambda r: r.array(32))
    total, free = env.balance_of(account)
    return OK, Writer().u128(total).u128(free).finish()


def worker_pubkey_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``worker_pubkey() -> [u8; 32]``: the worker's identity public key.

    Availability: query only (32 zero bytes in transactions)
    """
    return OK, bytes(env.services.worker_pubkey)


def worker_pubkey_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``worker_pubkey`` outside queries: 32 zero bytes (workers differ).

    Availability: query only (32 zero bytes in transactions)
    """
    return OK, bytes(32)


def untrusted_millis_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``untrusted_millis_since_unix_epoch() -> u64``: the worker's wall clock.

    Availability: query only (0 in transactions)
    """
    return OK, Writer().u64(int(env.services.clock() * 1000)).finish()


def untrusted_millis_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``untrusted_millis_since_unix_epoch`` outside queries: 0.

    Availability: query only (0 in transactions)
    """
    return OK, Writer().u64(0).finish()


def code_exists(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``code_exists(code_hash: Hash, sidevm: bool) -> bool``. SideVM programs are not
    supported here, so ``sidevm = true`` is always false.

    Availability: query | transaction
    """
    code_hash, sidevm = decode(data, "code_exists(code_hash, sidevm)", lambda r: (r.array(32), r.boolean()))
    return OK, encode_bool(not sidevm and env.code_exists(code_hash))


def import_latest_system_code(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``import_latest_system_code(payer: AccountId) -> Option<Hash>``: the code hash of the
    configured latest system code if that code exists in the cluster (we never upload it from
    here). Only the system contract may call it (others: ``BadOrigin``).

    Availability: query | transaction
    """
    decode(data, "import_latest_system_code(payer)", lambda r: r.array(32))
    ensure_system(env, "import_latest_system_code")
    latest = env.services.latest_system_code
    found = bytes(latest) if latest is not None and env.code_exists(bytes(latest)) else None
    return OK, Writer().option(found, Writer.raw).finish()


def runtime_version(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``runtime_version() -> (u32, u32)``: (1, 2) — pink runtime 1.2 semantics.

    Availability: query | transaction
    """
    major, minor = RUNTIME_VERSION
    return OK, Writer().u32(major).u32(minor).finish()


def current_event_chain_head(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``current_event_chain_head() -> (u64, Hash)``: next event block number, last event
    block hash.

    Availability: query | transaction
    """
    number, block_hash = env.services.event_chain_head()
    if len(block_hash) != 32:
        raise ChainExtensionError("InternalError: event chain head hash is not 32 bytes", kind="InternalError")
    return OK, Writer().u64(number).raw(bytes(block_hash)).finish()


def js_eval_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``js_eval(codes: Vec<JsCode>, args: Vec<String>) -> JsValue``: run JavaScript source
    with quickjs-ng, ``scriptArgs`` = args, bounded by the query's remaining wall clock.

    Availability: query only (``JsValue::Exception`` in transactions)
    """
    from phat_runtime.pink import js  # imports quickjs lazily

    codes, args = decode(data, "js_eval(codes, args)", js.read_args)
    return OK, js.evaluate(codes, args, time_limit_ms=env.remaining_ms()).encode()


def js_eval_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``js_eval`` outside queries: ``JsValue::Exception`` (JS is not deterministic here).

    Availability: query only (``JsValue::Exception`` in transactions)
    """
    from phat_runtime.pink import js

    decode(data, "js_eval(codes, args)", js.read_args)
    return OK, js.NOT_IN_TRANSACTION.encode()


def worker_sgx_quote_query(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``worker_sgx_quote() -> Option<SgxQuote>``: the worker's attestation quote, if any.

    Availability: query only (None in transactions)
    """
    provider = env.services.quote_provider
    quote = _as_quote(provider()) if provider is not None else None
    return OK, Writer().option(quote, lambda w, q: w.raw(q.encode())).finish()


def worker_sgx_quote_deterministic(env: ExtensionEnv, data: bytes) -> tuple[int, bytes]:
    """``worker_sgx_quote`` outside queries: None.

    Availability: query only (None in transactions)
    """
    return OK, b"\x00"


def register(registry: ChainExtensionRegistry, mode: ExecutionMode) -> None:
    """Register this module's functions with the behaviour of ``mode``."""
    query = not mode.deterministic
    handlers: dict[int, Handler] = {
        GETRANDOM: getrandom_query if query else getrandom_deterministic,
        IS_IN_TRANSACTION: _is_in_transaction(not query),
        SYSTEM_CONTRACT_ID: system_contract_id,
        BALANCE_OF: balance_of,
        WORKER_PUBKEY: worker_pubkey_query if query else worker_pubkey_deterministic,
        UNTRUSTED_MILLIS: untrusted_millis_query if query else untrusted_millis_deterministic,
        CODE_EXISTS: code_exists,
        IMPORT_LATEST_SYSTEM_CODE: import_latest_system_code,
        RUNTIME_VERSION_ID: runtime_version,
        CURRENT_EVENT_CHAIN_HEAD: current_event_chain_head,
        JS_EVAL: js_eval_query if query else js_eval_deterministic,
        WORKER_SGX_QUOTE: worker_sgx_quote_query if query else worker_sgx_quote_deterministic,
    }
    for func, handler in handlers.items():
        registry.register(func, handler)
