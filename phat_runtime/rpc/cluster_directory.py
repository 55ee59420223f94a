"""A cluster's membership as a client reads it from the chain: which workers it may use and
trust, and the key its transactions' payloads are sealed to.

:class:`ClusterDirectory` scans finalized blocks with the same deterministic state machine the
workers run (:class:`~phat_runtime.chain.Membership`), so a client learns the registered,
policy-passing, non-revoked workers, their RPC URLs and the current key epoch's public halves
from the chain — never from a worker's say-so. The scanned membership and its cursor are cached
on disk (``~/.cache/phat/membership/`` by default), so the next run reads only the blocks
finalized since; the cache is dropped when the chain is another one (genesis, or the hash of the
cached cursor block, differs) or when it started later than the scan asked for.

    directory = ClusterDirectory("ws://127.0.0.1:9944", cluster, since=1)
    directory.refresh(progress=print)          # reads new finalized blocks
    directory.live_workers()                   # [Member(identity, rpc_url, …), …]
    directory.call_key()                       # EpochKey: what Call payloads are sealed to
    directory.check_trusted(receipt.worker)    # UntrustedWorker unless a live member

Must not: hold any secret, talk to workers (``rpc/cluster_client.py`` does).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from phat_runtime.chain import ChainNode, EpochKey, Member, Membership
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.errors import ChainUnavailable, ConfigError
from phat_runtime.rpc.channel import VerificationError

log = logging.getLogger("phat_runtime.rpc")
#: Where scanned memberships are kept between runs (env ``PHAT_CACHE_DIR`` overrides).
DEFAULT_CACHE_DIR = Path(os.environ.get("PHAT_CACHE_DIR", Path.home() / ".cache" / "phat"))
CACHE_VERSION = 1
#: Save the cache this often during a long scan, so an interrupted scan resumes.
SAVE_EVERY_BLOCKS = 500
#: Report progress this often during a scan.
PROGRESS_EVERY_BLOCKS = 50
#: A directory older than this is refreshed before it vouches for a receipt.
DEFAULT_MAX_AGE_S = 5.0

Progress = Callable[[int, int], None]  # (blocks scanned, blocks to scan)


class UntrustedWorker(VerificationError):
    """A receipt or answer from a worker that is not a live member of the cluster on chain
    (never registered, failed the policy, or revoked): do not trust it."""


class ClusterDirectory:
    """The membership of ``cluster`` on the chain at ``chain_url``, scanned from block ``since``."""

    def __init__(self, chain_url: str, cluster: bytes, *, since: int = 1, cache_dir: Path | None = None,
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        if len(cluster) != 32:
            raise ConfigError("a cluster id is 32 bytes (0x-hex)")
        if since < 1:
            raise ConfigError(f"--since {since}: chain blocks to scan start at 1")
        self.node = ChainNode(chain_url)
        self.cluster = cluster
        self.since = since
        self.cache_dir = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
        self.max_age_s = max_age_s
        self.membership = Membership(cluster)
        self.refreshed_at: float | None = None  # time.monotonic() of the last refresh
        self._lock = threading.RLock()

    def close(self) -> None:
        self.node.close()

    # --- reading the chain ----------------------------------------------------------------------
    def refresh(self, progress: Progress | None = None) -> Membership:
        """Apply every finalized block after the cursor; :class:`ConfigError` if the cluster
        does not exist in the blocks scanned."""
        with self._lock:
            self.node.connect()
            if self.refreshed_at is None:
                self._load_cache()
            head = self.node.finalized_number()
            start = self.membership.cursor + 1 if self.membership.cursor else self.since
            total, done = max(0, head - start + 1), 0
            for block in self.node.blocks(start, head):
                self.membership.apply_block(block)
                self._cursor_hash = block.hash
                done += 1
                if progress is not None and (done % PROGRESS_EVERY_BLOCKS == 0 or done == total):
                    progress(done, total)
                if done % SAVE_EVERY_BLOCKS == 0:
                    self._save_cache()
            if done:
                self._save_cache()
            self.refreshed_at = time.monotonic()
            if not self.membership.created:
                raise ConfigError(
                    f"no cluster 0x{self.cluster.hex()} was created on {self.node.url} in blocks "
                    f"{self.since}–{head}: check --cluster, and --since (the block that created it "
                    "or earlier)")
            return self.membership

    def fresh(self, progress: Progress | None = None) -> Membership:
        """The membership, refreshed first if older than ``max_age_s``. If the chain node cannot
        be reached after a first successful read, the last view is kept (with a warning) and
        the node asked again after ``max_age_s``: queries go on while the chain is away."""
        with self._lock:
            if self.refreshed_at is None:
                return self.refresh(progress)
            if time.monotonic() - self.refreshed_at > self.max_age_s:
                try:
                    return self.refresh(progress)
                except ChainUnavailable as exc:
                    log.warning("%s; using the cluster's membership as of block %d", exc, self.membership.cursor)
                    self.refreshed_at = time.monotonic()
            return self.membership

    # --- answers --------------------------------------------------------------------------------
    def live_workers(self) -> list[Member]:
        """Registered, policy-passing, non-revoked workers, in registration order."""
        return self.fresh().live_members()

    def call_key(self) -> EpochKey:
        """The public halves of the current key epoch, as published on chain."""
        membership = self.fresh()
        epoch = membership.current_epoch
        if epoch is None:
            raise ConfigError(f"cluster 0x{self.cluster.hex()} has no published cluster key yet (its "
                              "genesis worker publishes epoch 0 once registered): wait and retry")
        return membership.epochs[epoch]

    def is_trusted(self, worker: bytes) -> bool:
        return self.fresh().is_trusted(worker)

    def check_trusted(self, worker: bytes) -> None:
        """:class:`UntrustedWorker` unless ``worker`` is a live member (refreshing first if the
        view is stale, so a revocation is seen)."""
        membership = self.fresh()
        member = membership.members.get(worker)
        if member is not None and member.live:
            return
        who = f"worker {to_ss58(worker)}"
        if member is None:
            why = "is not registered in the cluster"
        elif member.revoked_at is not None:
            why = f"was revoked by the cluster owner at chain block {member.revoked_at}"
        else:
            why = f"failed the cluster's attestation policy ({member.reason})"
        raise UntrustedWorker(f"{who} {why} (chain {self.node.url}, as of block {membership.cursor}): "
                              "its receipts are refused")

    # --- cache ----------------------------------------------------------------------------------
    _cursor_hash: bytes | None = None
    _scanned_from: int | None = None  # the first block of the cached scan, if it started earlier

    def _cache_file(self) -> Path:
        assert self.node.genesis_hash is not None
        return (self.cache_dir / "membership"
                / f"{self.node.genesis_hash.hex()[:16]}-{self.cluster.hex()}.json")

    def _load_cache(self) -> None:
        path = self._cache_file()
        try:
            doc = json.loads(path.read_text())
            if doc.get("version") != CACHE_VERSION or doc["since"] > self.since:
                return
            membership = Membership.from_json(doc["membership"])
            cursor_hash = bytes.fromhex(doc["cursor_hash"])
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError):
            return  # unreadable: scan again (and overwrite it)
        if membership.cluster != self.cluster:
            return
        if membership.cursor > self.node.finalized_number() or self.node.block(membership.cursor).hash != cursor_hash:
            return  # another chain under the same genesis (a devnet started afresh)
        self.membership, self._cursor_hash, self._scanned_from = membership, cursor_hash, doc["since"]

    def _save_cache(self) -> None:
        if self._cursor_hash is None:
            return
        path = self._cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": CACHE_VERSION, "since": self._scanned_from or self.since, "cursor_hash": self._cursor_hash.hex(),
               "membership": self.membership.to_json()}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
