"""One connection to a Substrate node: read finalized blocks, follow them, submit messages.

Owns: the only use of substrate-interface's network side (WebSocket JSON-RPC). Reads finalized
blocks by number (``chain_getFinalizedHead`` bounds every read: nothing unfinalized is ever
returned), turns each into a :class:`~phat_runtime.chain.blocks.ChainBlock` (rules in
``blocks.py``), follows new finalized blocks in order, reconnecting with backoff and resuming
after the last block it yielded, and submits protocol messages as signed
``system.remark_with_event`` extrinsics (several in one ``utility.batch_all``), waiting until
they are finalized. Foreign errors become :class:`ChainError` subclasses that say what to do.

Must not: decode or validate protocol messages (``protocol.py``), apply blocks (the worker).
Not thread-safe: one ``ChainNode`` per thread (e.g. one follows, another submits).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from phat_runtime.chain.blocks import ChainBlock, Remark, is_signed, protocol_remarks, timestamp_of
from phat_runtime.chain.protocol import MAGIC, Message
from phat_runtime.chain.runtime_info import RuntimeInfo
from phat_runtime.chain.submit import ChainSigner, Inclusion, submit_remarks
from phat_runtime.errors import ChainDiverged, ChainError, ChainUnavailable, ConfigError

log = logging.getLogger("phat_runtime.chain")

SS58_FORMAT = 42
#: How long one RPC may wait for an answer before the connection counts as lost.
DEFAULT_TIMEOUT_S = 60.0
#: How often ``follow`` asks for a new finalized head when there is nothing to read.
DEFAULT_POLL_S = 0.5
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 10.0
#: scalecodec's type registries are not safe when several connections of one process load
#: metadata or decode at once (seen: "Decoder class for Compact<u32> not found", a call whose
#: metadata became None). Everything that touches them — connecting (metadata), loading a
#: runtime, decoding extrinsics, composing and signing — holds this lock; network waits do not.
SCALE_LOCK = threading.RLock()


def _unavailable(url: str, exc: BaseException, doing: str) -> ChainUnavailable:
    reason = str(exc) or type(exc).__name__
    return ChainUnavailable(
        f"cannot reach the Substrate node at {url} while {doing}: {reason}. Is the node running "
        f"and is the URL right? Start a local chain with `phat devnet`, or pass --chain ws://HOST:PORT.")


def _network_errors() -> tuple[type[BaseException], ...]:
    from websocket import WebSocketException

    return (OSError, WebSocketException)


class ChainNode:
    """A Substrate node at ``url`` (``ws://`` or ``wss://``). No I/O until first used."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"chain URL {url!r} must start with ws:// or wss:// (block "
                              "subscriptions and extrinsic watching need a WebSocket)")
        self.url = url
        self.timeout_s = timeout_s
        self._api: Any = None
        self._runtime: RuntimeInfo | None = None
        self.genesis_hash: bytes | None = None

    # --- connection ------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (done lazily by every call); :class:`ChainUnavailable` if the
        node cannot be reached, :class:`ChainDiverged` if it now serves another chain."""
        if self._api is not None:
            return
        from substrateinterface import SubstrateInterface

        try:
            with SCALE_LOCK:
                api = SubstrateInterface(url=self.url, ss58_format=SS58_FORMAT, auto_reconnect=False,
                                         ws_options={"timeout": self.timeout_s,
                                                     "skip_utf8_validation": True})
            genesis = bytes.fromhex(api.rpc_request("chain_getBlockHash", [0])["result"][2:])
        except _network_errors() as exc:
            raise _unavailable(self.url, exc, "connecting") from exc
        if self.genesis_hash is not None and genesis != self.genesis_hash:
            api.close()
            raise ChainDiverged(f"the node at {self.url} now serves another chain (genesis 0x"
                                f"{genesis.hex()}, was 0x{self.genesis_hash.hex()})")
        self.genesis_hash = genesis
        self._api = api
        with SCALE_LOCK:
            self._runtime = RuntimeInfo(api)

    def close(self) -> None:
        api, self._api, self._runtime = self._api, None, None
        if api is not None:
            try:
                api.close()
            except _network_errors():
                pass

    def __enter__(self) -> ChainNode:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rpc(self, method: str, params: list[Any]) -> Any:
        from substrateinterface.exceptions import SubstrateRequestException

        self.connect()
        try:
            return self._api.rpc_request(method, params)["result"]
        except _network_errors() as exc:
            self.close()
            raise _unavailable(self.url, exc, f"calling {method}") from exc
        except SubstrateRequestException as exc:
            raise ChainError(f"the node at {self.url} refused {method}: {exc}") from exc

    # --- reading ---------------------------------------------------------------------------

    def finalized_number(self) -> int:
        """Number of the latest finalized block."""
        head = self._rpc("chain_getFinalizedHead", [])
        return int(self._rpc("chain_getHeader", [head])["number"], 16)

    def block(self, number: int) -> ChainBlock:
        """Finalized block ``number``; :class:`ChainError` if it is not finalized yet."""
        finalized = self.finalized_number()
        if number > finalized:
            raise ChainError(f"block {number} is not finalized yet (finalized: {finalized})")
        return self._read(number)

    def blocks(self, start: int, end: int | None = None) -> Iterator[ChainBlock]:
        """Finalized blocks ``start``..``end`` (inclusive; default: the finalized head now),
        each checked to continue the one before."""
        last = self.finalized_number() if end is None else min(end, self.finalized_number())
        parent: bytes | None = None
        for number in range(start, last + 1):
            block = self._read(number)
            _check_parent(block, parent)
            parent = block.hash
            yield block

    def follow(self, start: int, *, parent_hash: bytes | None = None,
               stop: threading.Event | None = None, poll_s: float = DEFAULT_POLL_S,
               give_up_after_s: float | None = None) -> Iterator[ChainBlock]:
        """Every finalized block from ``start`` on, in order, forever (until ``stop`` is set).

        ``parent_hash`` (the hash of block ``start - 1`` the caller already applied) is checked
        against the first block, and each block against the one before: a different chain
        raises :class:`ChainDiverged`. When the node goes away the follower reconnects with
        backoff and resumes after the last block it yielded — none skipped, none repeated;
        after ``give_up_after_s`` seconds without a connection it raises ChainUnavailable.
        The connection is closed when the generator ends.
        """
        stop = stop or threading.Event()
        number, parent = start, parent_hash
        backoff, down_since = BACKOFF_FIRST_S, None
        try:
            while not stop.is_set():
                try:
                    finalized = self.finalized_number()
                    if down_since is not None:
                        log.warning("chain node %s is back; resuming at block %d", self.url, number)
                    backoff, down_since = BACKOFF_FIRST_S, None
                    while number <= finalized and not stop.is_set():
                        block = self._read(number)
                        _check_parent(block, parent)
                        yield block
                        number, parent = number + 1, block.hash
                except ChainUnavailable as exc:
                    now = time.monotonic()
                    down_since = down_since or now
                    if give_up_after_s is not None and now - down_since > give_up_after_s:
                        raise
                    log.warning("%s; retrying in %.1f s (next block %d)", exc, backoff, number)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                stop.wait(poll_s)
        finally:
            self.close()

    def _read(self, number: int) -> ChainBlock:
        block_hash = self._rpc("chain_getBlockHash", [number])
        if block_hash is None:
            raise ChainError(f"the node at {self.url} has no block {number}")
        body = self._rpc("chain_getBlock", [block_hash])
        if body is None:
            raise ChainError(f"the node at {self.url} lost the body of block {number} ({block_hash})")
        header = body["block"]["header"]
        parent = header["parentHash"]
        extrinsics = [bytes.fromhex(x[2:]) for x in body["block"]["extrinsics"]]
        # A block's body was executed by its parent's runtime (an upgrade applies after it).
        with SCALE_LOCK:
            return self._parse(number, block_hash, parent, extrinsics)

    def _parse(self, number: int, block_hash: str, parent: str, extrinsics: list[bytes]) -> ChainBlock:
        runtime = self._runtime_at(parent if number > 0 else block_hash)
        timestamp = timestamp_of(extrinsics, runtime.indices)
        if timestamp is None and number > 0 and runtime.indices.timestamp_set is not None:
            raise ChainError(f"block {number} has no timestamp.set inherent")
        remarks: list[Remark] = []
        for index, raw in enumerate(extrinsics):
            if MAGIC not in raw or not is_signed(raw):
                continue
            decoded = runtime.signer_and_call(raw, number, index)
            if decoded is None:
                continue
            signer, call = decoded
            found = protocol_remarks(call, runtime.indices)
            if found is None:
                log.debug("block %d extrinsic %d mixes other calls with remarks; ignored", number, index)
                continue
            remarks.extend(Remark(index, signer, data) for data in found)
        return ChainBlock(number, bytes.fromhex(block_hash[2:]), bytes.fromhex(parent[2:]),
                          timestamp or 0, tuple(remarks))

    def _runtime_at(self, block_hash: str) -> RuntimeInfo:
        self.connect()
        assert self._runtime is not None
        from substrateinterface.exceptions import SubstrateRequestException

        try:
            self._runtime.at(block_hash)
        except _network_errors() as exc:
            self.close()
            raise _unavailable(self.url, exc, "loading runtime metadata") from exc
        except SubstrateRequestException as exc:
            raise ChainError(f"the node at {self.url} has no runtime for block {block_hash}: {exc}") from exc
        return self._runtime

    # --- writing ---------------------------------------------------------------------------

    def submit(self, messages: Sequence[Message | bytes], signer: ChainSigner) -> Inclusion:
        """Sign and submit ``messages`` (encoded protocol messages or :class:`Message` objects)
        as one extrinsic and wait until it is finalized. :class:`NoFunds` if the account cannot
        pay the fee, :class:`SubmitError` for any other refusal or failure."""
        if not messages:
            raise ConfigError("nothing to submit")
        remarks = [m.encode() if isinstance(m, Message) else bytes(m) for m in messages]
        self.connect()
        try:
            return submit_remarks(self._api, self.url, remarks, signer, SCALE_LOCK)
        except _network_errors() as exc:
            self.close()
            raise _unavailable(self.url, exc, "submitting (the extrinsic may or may not have "
                               "been included; check the chain before resubmitting)") from exc
        except ChainError:
            raise
        except Exception as exc:  # the library's state is suspect: start the next call afresh
            self.close()
            raise ChainError(f"submitting to {self.url} failed inside substrate-interface ({exc!r}); "
                             "the connection was reset — retry") from exc

    def free_balance(self, account: bytes) -> int:
        """The account's free balance in the chain's smallest unit."""
        self.connect()
        from substrateinterface.exceptions import SubstrateRequestException

        try:
            info = self._api.query("System", "Account", ["0x" + account.hex()])
        except _network_errors() as exc:
            self.close()
            raise _unavailable(self.url, exc, "reading an account") from exc
        except SubstrateRequestException as exc:
            raise ChainError(f"the node at {self.url} refused to read an account: {exc}") from exc
        return int(info.value["data"]["free"])


def _check_parent(block: ChainBlock, parent: bytes | None) -> None:
    if parent is not None and block.parent_hash != parent:
        raise ChainDiverged(
            f"finalized block {block.number} (0x{block.hash.hex()}) has parent 0x"
            f"{block.parent_hash.hex()}, not the block 0x{parent.hex()} followed so far: the node "
            "serves a different chain (a devnet started afresh?). Use a fresh data dir for the "
            "worker, or point it at the chain it was following.")


__all__ = ["ChainNode", "ChainSigner", "Inclusion"]
