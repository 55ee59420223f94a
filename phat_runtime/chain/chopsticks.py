"""The npm side of the devnet: install the pinned packages, extract the genesis, build a config.

Owns: finding the pinned packages (``package.json`` + lockfile at the repo root) and running
``npm ci`` once — at the root if CI did, else in a per-user cache shared by all checkouts —
under a file lock, with a progress message (it takes minutes); extracting the raw Rococo Asset
Hub chain spec from ``@substrate/connect-known-chains`` into the devnet's data dir at run time
(it is GPL-3.0: never committed, never shipped); writing chopsticks' config file. Must not:
start or stop processes (``devnet.py``).

The genesis gets one storage entry added, ``Timestamp.Now`` = the devnet's creation time, so
that the block chopsticks builds on every start is identical each time and a restarted chain
keeps the hashes it had (chopsticks rebuilds block 1 on every start and overwrites the stored
one; with a fixed parent timestamp the rebuilt block is the same block).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from phat_runtime.errors import DevnetError

CHOPSTICKS = "@acala-network/chopsticks"
KNOWN_CHAINS = "@substrate/connect-known-chains"
GENESIS_MODULE = f"{KNOWN_CHAINS}/rococo_v2_2_asset_hub"
#: storage key of pallet_timestamp's ``Now``: twox128("Timestamp") ‖ twox128("Now").
TIMESTAMP_NOW_KEY = "0xf0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"
NPM_CI_TIMEOUT_S = 900
#: The project root: the directory holding package.json + package-lock.json.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

Progress = Callable[[str], None]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevnetError(f"`{name}` not found on PATH: the devnet runs chopsticks on Node.js ≥ 20 "
                          "with npm (Debian: apt-get install nodejs npm)")
    return path


def chopsticks_script(root: Path = PROJECT_ROOT) -> Path:
    return root / "node_modules" / CHOPSTICKS / "chopsticks.cjs"


def installed(root: Path = PROJECT_ROOT) -> bool:
    """True if the versions package.json pins are the ones in node_modules."""
    try:
        pinned = json.loads((root / "package.json").read_text())["dependencies"]
        for name in (CHOPSTICKS, KNOWN_CHAINS):
            meta = json.loads((root / "node_modules" / name / "package.json").read_text())
            if meta["version"] != pinned[name]:
                return False
    except (OSError, ValueError, KeyError):
        return False
    return chopsticks_script(root).is_file()


def npm_dir(root: Path = PROJECT_ROOT) -> Path:
    """Where the pinned packages are: ``root/node_modules`` when ``npm ci`` ran there (CI does),
    else a per-user cache keyed by the lockfile (``$PHAT_NPM_DIR`` or ``~/.cache/phat_runtime``)
    shared by every checkout with the same pins."""
    return root if installed(root) else cache_dir(root)


def cache_dir(root: Path = PROJECT_ROOT) -> Path:
    """The per-user install directory for the pins of ``root``."""
    try:
        pins = (root / "package.json").read_bytes() + (root / "package-lock.json").read_bytes()
    except OSError:
        raise DevnetError(f"no package.json + package-lock.json in {root}: the devnet needs a "
                          "source checkout of phat_runtime (they pin chopsticks)") from None
    base = os.environ.get("PHAT_NPM_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "phat_runtime")
    return Path(base) / f"npm-{hashlib.sha256(pins).hexdigest()[:16]}"


def ensure_installed(root: Path = PROJECT_ROOT, progress: Progress | None = None) -> tuple[Path, float]:
    """The directory holding ``node_modules`` with the pinned packages, running ``npm ci`` there
    first if needed; and the seconds that took (0 if nothing ran). Several processes may call
    this at once: one installs, the others wait for it."""
    target = npm_dir(root)
    if installed(target):
        return target, 0.0
    npm = tool("npm")
    tool("node")
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(target):
            return target, 0.0
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(root / name, target / name)
        if progress:
            progress(f"installing chopsticks with npm ci into {target} (a few minutes, first run only)…")
        started = time.monotonic()
        try:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=target, text=True,
                                  capture_output=True, timeout=NPM_CI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DevnetError(f"npm ci in {target} did not finish in {NPM_CI_TIMEOUT_S} s") from None
        if done.returncode != 0 or not installed(target):
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DevnetError(f"npm ci failed in {target} (is the npm registry reachable?):\n{tail}")
        elapsed = time.monotonic() - started
        if progress:
            progress(f"npm ci done in {elapsed:.0f} s")
        return target, elapsed


def extract_genesis(target: Path, npm_dir: Path, *, now_ms: int | None = None) -> Path:
    """Write the raw genesis to ``target`` (once: an existing file is kept, so a restarted chain
    has the same genesis), with ``Timestamp.Now`` fixed to ``now_ms`` (default: now). An existing
    genesis with another time than a given ``now_ms`` is refused (a chain cannot change its past)."""
    if target.is_file():
        if now_ms is not None and (kept := genesis_time_ms(target)) != now_ms:
            raise DevnetError(f"the chain in {target.parent} began at {kept} ms, not {now_ms}: its "
                              "genesis time cannot change; use a new data dir")
        return target
    node = tool("node")
    script = f"process.stdout.write(require({json.dumps(GENESIS_MODULE)}).chainSpec)"
    done = subprocess.run([node, "-e", script], cwd=npm_dir, capture_output=True, timeout=120)
    if done.returncode != 0:
        raise DevnetError(f"cannot load the genesis from npm {GENESIS_MODULE}: "
                          f"{done.stderr.decode(errors='replace').strip()[-500:]}")
    try:
        spec = json.loads(done.stdout)
        top = spec["genesis"]["raw"]["top"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"npm {GENESIS_MODULE} did not give a raw chain spec: {exc}") from exc
    stamp = int(time.time()) * 1000 if now_ms is None else now_ms
    top[TIMESTAMP_NOW_KEY] = "0x" + stamp.to_bytes(8, "little").hex()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(spec))
    os.replace(partial, target)
    return target


def genesis_time_ms(genesis: Path) -> int | None:
    """``Timestamp.Now`` of an extracted genesis (unix ms); ``None`` if it has none."""
    try:
        raw = json.loads(genesis.read_text())["genesis"]["raw"]["top"].get(TIMESTAMP_NOW_KEY)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"{genesis} is not a raw chain spec: {exc}") from exc
    return None if raw is None else int.from_bytes(bytes.fromhex(raw.removeprefix("0x")), "little")


def write_config(path: Path, *, genesis: Path, db: Path, port: int, host: str = "127.0.0.1") -> Path:
    """chopsticks' config (JSON is YAML): Instant blocks, persistent db, resume from its head."""
    config = {
        "genesis": str(genesis.resolve()),
        "host": host,
        "port": port,
        "build-block-mode": "Instant",
        "db": str(db.resolve()),
        "resume": True,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
