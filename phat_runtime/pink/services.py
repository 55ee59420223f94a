"""Cluster-level services the pink functions use: keys, worker identity, HTTP egress, the
local cache, contract logs, the system contract, attestation quotes.

One :class:`PinkServices` per cluster (per worker). Pieces not configured are ``None`` and the
functions that need them fail the way pink fails (e.g. no cluster key → ``KeySeedMissing``).
Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phat_runtime.types import AccountId


@dataclass
class PinkServices:
    #: 64-byte sr25519 cluster secret (scalar ‖ nonce); None → KeySeedMissing.
    cluster_secret: bytes | None = field(default=None, repr=False)
    #: Worker identity sr25519 public key (what ``worker_pubkey`` returns in queries).
    worker_pubkey: bytes = bytes(32)
    #: The cluster's system contract, if one is deployed.
    system_contract: AccountId | None = None
    #: HTTP egress for queries (``pink.http``); None → every request is NotAllowed.
    egress: Any = None
    #: Per-contract local cache (``pink.cache``).
    cache: Any = None
    #: Per-contract log buffers (``pink.logs``).
    logs: Any = None
    #: Returns the worker's attestation quote for ``worker_sgx_quote`` (TEE layer), or None.
    quote_provider: Callable[[], Any] | None = None
    #: Wall clock for ``untrusted_millis_since_unix_epoch`` (queries only).
    clock: Callable[[], float] = time.time
    #: Code hash ``import_latest_system_code`` offers the system contract (must exist in the cluster).
    latest_system_code: bytes | None = None
    #: (next event block number, last event block hash) for ``current_event_chain_head``.
    event_chain_head: Callable[[], tuple[int, bytes]] = lambda: (0, bytes(32))
