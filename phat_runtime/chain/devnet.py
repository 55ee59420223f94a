"""A real Substrate runtime on this machine: chopsticks running Rococo Asset Hub, offline.

Owns: the chopsticks process of one data dir — start (install npm packages if needed, extract
the genesis, pick a free port, launch with a log file, wait until the RPC answers, fund
accounts), stop (SIGTERM, wait, then SIGKILL) and restart on the same database, which keeps
every block (``resume``). Blocks are built at once for each extrinsic (``Instant``) and are
final at once. Development only: the chain's runtime is real, its consensus is not.

Data dir layout: ``genesis.json`` (extracted at run time — GPL, never commit it),
``chopsticks.json`` (config), ``chain.sqlite`` (blocks), ``chopsticks.log``.

The chain's clock starts at ``genesis_time_ms`` (default: when the data dir is created) and
advances one slot (12 s) per block, however fast blocks are built. A past genesis time lets a
chain verify attestation samples whose collateral is valid only in a past window (registrations
are verified at the block's time); ``dev_timeTravel`` moves a running chain's clock (either way:
the next block is one slot after the given time).

Accounts are funded through ``dev_setStorage`` after each start, only where the balance is
below half the target, keeping nonces: funding written that way lives in memory until the
account's next transaction writes it into a block, so every start tops up again.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from phat_runtime.chain import chopsticks
from phat_runtime.chain.chopsticks import PROJECT_ROOT, Progress
from phat_runtime.crypto.accounts import DEV_ACCOUNTS, dev_account
from phat_runtime.errors import DevnetError

log = logging.getLogger("phat_runtime.chain")

#: Funding of every dev account and extra account (the chain's token has 12 decimals).
DEFAULT_BALANCE = 10**18
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


class Devnet:
    """``Devnet(data_dir, port).start()`` … ``.stop()``, or ``with Devnet(d) as chain:``."""

    def __init__(self, data_dir: Path, port: int | None = None, *, accounts: Iterable[bytes] = (),
                 balance: int = DEFAULT_BALANCE, progress: Progress | None = None,
                 project_root: Path = PROJECT_ROOT, genesis_time_ms: int | None = None) -> None:
        """``genesis_time_ms``: the chain's time at genesis (unix ms; block 1 is one slot later).
        Default: the moment the data dir's genesis is first extracted. Fixed for the life of the
        data dir: a different value for an existing chain is refused."""
        self.data_dir = Path(data_dir)
        self.genesis_time_ms = genesis_time_ms
        self.port = port
        self.accounts = [dev_account(name) for name in DEV_ACCOUNTS] + [bytes(a) for a in accounts]
        self.balance = balance
        self.progress = progress or log.info
        self.root = project_root
        self.process: subprocess.Popen[bytes] | None = None
        self.npm_dir = self.root
        self.npm_seconds = 0.0
        self.start_seconds = 0.0

    @classmethod
    def running_at(cls, url: str) -> Devnet:
        """A handle on a devnet already running at ``url`` (another process started it), e.g. to
        :meth:`fund` a worker that joins it."""
        if not url.startswith("ws://127.0.0.1:"):
            raise DevnetError(f"{url} is not a local devnet (ws://127.0.0.1:PORT)")
        net = cls(Path("."), int(url.rsplit(":", 1)[1]))
        return net

    @property
    def url(self) -> str:
        if self.port is None:
            raise DevnetError("the devnet has not been started (no port yet)")
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "chopsticks.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Devnet:
        """Install (first run), launch, wait for the RPC, fund accounts. Idempotent."""
        if self.running():
            return self
        self.npm_dir, self.npm_seconds = chopsticks.ensure_installed(self.root, self.progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        genesis = chopsticks.extract_genesis(self.data_dir / "genesis.json", self.npm_dir,
                                             now_ms=self.genesis_time_ms)
        if self.port is None:
            self.port = free_port()
        elif _port_in_use(self.port):
            raise DevnetError(f"port {self.port} is already in use: pick another with --port "
                              "or stop what listens there")
        config = chopsticks.write_config(self.data_dir / "chopsticks.json", genesis=genesis,
                                         db=self.data_dir / "chain.sqlite", port=self.port)
        resumed = (self.data_dir / "chain.sqlite").exists()
        self.progress(f"starting chopsticks (Rococo Asset Hub runtime) on {self.url}"
                      + (" — resuming its blocks" if resumed else "") + f"; log: {self.log_path}")
        started = time.monotonic()
        with open(self.log_path, "ab") as logfile:
            logfile.write(f"\n=== phat devnet start {time.ctime()} port {self.port}\n".encode())
            logfile.flush()
            self.process = subprocess.Popen(
                [chopsticks.tool("node"), str(chopsticks.chopsticks_script(self.npm_dir)), "-c", str(config)],
                cwd=self.data_dir, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(timeout_s)
            self.fund(self.accounts)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.progress(f"chain ready at {self.url} in {self.start_seconds:.1f} s")
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Wait until the database holds the head block, then SIGTERM, wait, SIGKILL. The
        database stays: ``start()`` resumes it."""
        process = self.process
        if process is None or process.poll() is not None:
            self.process = None
            return
        self._wait_persisted(timeout_s)
        self.process = None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- RPC -------------------------------------------------------------------------------

    def rpc(self, method: str, params: list[Any], timeout_s: float = 30.0) -> Any:
        """One JSON-RPC call to the devnet (``dev_newBlock``, ``dev_setStorage``, …)."""
        from websocket import WebSocketException, create_connection

        try:
            ws = create_connection(self.url, timeout=timeout_s)
            try:
                ws.send(json.dumps({"id": 1, "jsonrpc": "2.0", "method": method, "params": params}))
                reply = json.loads(ws.recv())
            finally:
                ws.close()
        except (OSError, WebSocketException) as exc:
            raise DevnetError(f"devnet RPC {method} at {self.url} failed: {exc}") from exc
        if "error" in reply:
            raise DevnetError(f"devnet RPC {method} refused: {reply['error']}")
        return reply.get("result")

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is None or self.process.poll() is not None:
                raise DevnetError(f"chopsticks exited during start (code "
                                  f"{self.process.returncode if self.process else '?'}):\n"
                                  f"{self._log_tail()}\nfull log: {self.log_path}")
            try:
                if self.rpc("chain_getFinalizedHead", [], timeout_s=5):
                    return
            except DevnetError:
                pass
            if time.monotonic() > deadline:
                raise DevnetError(f"chopsticks did not answer on {self.url} within {timeout_s:.0f} s; "
                                  f"log: {self.log_path}\n{self._log_tail()}")
            time.sleep(0.25)

    def _wait_persisted(self, timeout_s: float) -> None:
        """chopsticks writes a block to its database after announcing it; stopping in between
        would lose the block. Wait (bounded) until the stored head matches the served head."""
        try:
            head = int(self.rpc("chain_getHeader", [], timeout_s=5)["number"], 16)
        except (DevnetError, KeyError, TypeError, ValueError):
            return  # not answering: nothing more will be written
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                db = sqlite3.connect(f"file:{self.data_dir / 'chain.sqlite'}?mode=ro", uri=True, timeout=2)
                try:
                    stored = db.execute("SELECT max(number) FROM block").fetchone()[0]
                finally:
                    db.close()
            except sqlite3.Error:
                stored = None
            if stored is not None and stored >= head:
                return
            time.sleep(0.1)
        log.warning("devnet: block %d not yet in chopsticks' database after %.0f s; stopping anyway",
                    head, timeout_s)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        useful = [t for t in text if "multiple versions" not in t and "cjs 1" not in t
                  and "conflicting packages" not in t and "explicitly install" not in t]
        return "\n".join(useful[-lines:])

    # --- funding ---------------------------------------------------------------------------

    def fund(self, accounts: Iterable[bytes], balance: int | None = None) -> int:
        """Top up every account whose free balance is below half of ``balance``; returns how
        many were topped up. Nonces and other fields are kept."""
        from scalecodec.utils.ss58 import ss58_encode

        target = self.balance if balance is None else balance
        entries = []
        for account in accounts:
            info = self._account_info(account)
            if info["free"] >= target // 2:
                continue
            entries.append([[ss58_encode(account, 42)], {
                "nonce": info["nonce"], "consumers": info["consumers"],
                "providers": max(info["providers"], 1), "sufficients": info["sufficients"],
                "data": {"free": str(target), "reserved": str(info["reserved"])},
            }])
        if entries:
            self.rpc("dev_setStorage", [{"System": {"Account": entries}}])
        return len(entries)

    def _account_info(self, account: bytes) -> dict[str, int]:
        from substrateinterface.utils.hasher import blake2_128_concat, xxh128

        key = xxh128(b"System") + xxh128(b"Account") + blake2_128_concat(account)
        raw = self.rpc("state_getStorage", ["0x" + key.hex()])
        data = bytes.fromhex(raw[2:]) if raw else bytes(16 + 32)
        u32 = [int.from_bytes(data[i : i + 4], "little") for i in range(0, 16, 4)]
        return {"nonce": u32[0], "consumers": u32[1], "providers": u32[2], "sufficients": u32[3],
                "free": int.from_bytes(data[16:32], "little"),
                "reserved": int.from_bytes(data[32:48], "little")}

