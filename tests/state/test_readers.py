"""Read views of the last committed block: consistent, never waiting for the writer, never making
it wait, blind to pending writes, read-only — in the writer's process (EncryptedStore,
MemoryBlockStore) and from another process (EncryptedStore.open_reader).

No timing assertions: blocking is shown with threads and events; the timeouts are only there
so that a regression fails instead of hanging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.errors import StateError, WrongStateKey
from phat_runtime.state import (
    EMPTY_ROOT,
    CommittedView,
    EncryptedStore,
    MemoryBlockStore,
    SnapshotStore,
    state_root,
)
from phat_runtime.state import meta as meta_module

from .helpers import CONTRACT_A, storage_key

GUARD_S = 60  # deadlock guard only: a healthy run takes milliseconds
K1, K2 = storage_key(CONTRACT_A, b"one"), storage_key(CONTRACT_A, b"two")


def _hash(n: int) -> bytes:
    return n.to_bytes(32, "little")


@pytest.fixture(params=["encrypted", "memory"])
def block_store(request: pytest.FixtureRequest, tmp_path: Path, secret: bytes) -> Iterator[SnapshotStore]:
    if request.param == "memory":
        yield MemoryBlockStore()
        return
    with EncryptedStore.open(tmp_path / "state.db", secret) as store:
        yield store


def _commit(store: SnapshotStore, number: int, writes: dict[bytes, bytes | None]) -> None:
    for key, value in writes.items():
        if value is None:
            store.delete(key)
        else:
            store.set(key, value)
    store.commit_block(number, _hash(number))


def _contents(view: CommittedView) -> dict[bytes, bytes]:
    return dict(view.iter_prefix(b""))


def test_both_stores_are_snapshot_stores(block_store: SnapshotStore) -> None:
    assert isinstance(block_store, SnapshotStore)
    with block_store.reader() as view:
        assert view.checkpoint is None and view.state_root == EMPTY_ROOT
        assert view.get(K1) is None and _contents(view) == {}


def test_a_view_keeps_its_block_until_it_ends(block_store: SnapshotStore) -> None:
    _commit(block_store, 1, {K1: b"v1", K2: b"w1"})
    with block_store.reader() as view:
        _commit(block_store, 2, {K1: b"v2", K2: None})  # same thread: commit does not wait
        assert block_store.checkpoint is not None and block_store.checkpoint.number == 2
        assert view.checkpoint is not None and view.checkpoint.number == 1
        assert view.get(K1) == b"v1" and view.get(K2) == b"w1"
        assert _contents(view) == {K1: b"v1", K2: b"w1"}
        assert view.state_root == state_root([(K1, b"v1"), (K2, b"w1")])
    with block_store.reader() as view:
        assert view.checkpoint == block_store.checkpoint and view.checkpoint.number == 2
        assert _contents(view) == {K1: b"v2"}
        assert view.state_root == state_root([(K1, b"v2")]) == block_store.state_root


def test_pending_writes_are_invisible_to_views(block_store: SnapshotStore) -> None:
    _commit(block_store, 1, {K1: b"v1"})
    block_store.set(K1, b"pending")
    block_store.set(K2, b"pending")
    assert block_store.get(K1) == b"pending"  # the writer sees its own writes
    with block_store.reader() as view:
        assert view.get(K1) == b"v1" and view.get(K2) is None
        assert _contents(view) == {K1: b"v1"}
    block_store.discard()


def test_views_are_read_only_and_end_with_their_block(block_store: SnapshotStore) -> None:
    _commit(block_store, 1, {K1: b"v1"})
    with block_store.reader() as view:
        with pytest.raises(StateError, match="read-only"):
            view.set(K1, b"x")
        with pytest.raises(StateError, match="read-only"):
            view.delete(K1)
    with pytest.raises(StateError, match="has ended"):
        view.get(K1)
    with pytest.raises(StateError, match="has ended"):
        list(view.iter_prefix(b""))
    assert block_store.pending == 0


def test_a_long_view_does_not_block_commits(block_store: SnapshotStore) -> None:
    _commit(block_store, 1, {K1: b"v1"})
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def long_query() -> None:
        with block_store.reader() as view:
            seen["before"] = view.get(K1)
            entered.set()
            release.wait(GUARD_S)
            seen["after"] = view.get(K1)
            seen["number"] = view.checkpoint.number if view.checkpoint else None

    query = threading.Thread(target=long_query)
    query.start()
    assert entered.wait(GUARD_S)
    writer = threading.Thread(target=lambda: [_commit(block_store, n, {K1: b"v%d" % n})
                                              for n in (2, 3, 4)])
    writer.start()
    writer.join(GUARD_S)
    blocked = writer.is_alive()
    release.set()
    query.join(GUARD_S)
    writer.join(GUARD_S)
    assert not blocked, "commit_block waited for a reader"
    assert seen == {"before": b"v1", "after": b"v1", "number": 1}
    with block_store.reader() as view:
        assert view.get(K1) == b"v4" and view.checkpoint.number == 4  # type: ignore[union-attr]


def test_views_do_not_wait_for_a_commit_in_progress(tmp_path: Path, secret: bytes,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is stopped *inside* its SQLite write transaction (rows written, checkpoint
    not yet): a view opened then returns at once, showing the previous block whole."""
    store = EncryptedStore.open(tmp_path / "state.db", secret)
    _commit(store, 1, {K1: b"v1", K2: b"w1"})
    inside, release = threading.Event(), threading.Event()
    real_put = meta_module.put_checkpoint

    def slow_put(*args: object, **kwargs: object) -> None:
        inside.set()
        release.wait(GUARD_S)
        real_put(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(meta_module, "put_checkpoint", slow_put)
    writer = threading.Thread(target=_commit, args=(store, 2, {K1: b"v2", K2: None}))
    writer.start()
    try:
        assert inside.wait(GUARD_S)
        result: dict[str, object] = {}

        def query() -> None:
            with store.reader() as view:
                result["data"] = _contents(view)
                result["number"] = view.checkpoint.number if view.checkpoint else None

        reader = threading.Thread(target=query)
        reader.start()
        reader.join(GUARD_S)
        waited = reader.is_alive()
    finally:
        release.set()
        writer.join(GUARD_S)
    assert not waited, "a view waited for the writer"
    assert result == {"data": {K1: b"v1", K2: b"w1"}, "number": 1}
    with store.reader() as view:
        assert _contents(view) == {K1: b"v2"} and view.checkpoint.number == 2  # type: ignore[union-attr]
    store.close()


def test_many_threads_read_while_blocks_commit(block_store: SnapshotStore) -> None:
    """Every view is one whole block: K1 and K2 always hold the same block number."""
    _commit(block_store, 1, {K1: b"1", K2: b"1"})
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            with block_store.reader() as view:
                a, b = view.get(K1), view.get(K2)
                number = view.checkpoint.number if view.checkpoint else None
                if not (a == b == str(number).encode()):
                    problems.append(f"block {number}: {a!r} / {b!r}")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(2, 40):
            _commit(block_store, n, {K1: str(n).encode(), K2: str(n).encode()})
    finally:
        stop.set()
        for t in threads:
            t.join(GUARD_S)
    assert problems == []


# --- another process -------------------------------------------------------------------------

_CHILD = r"""
import json, sys
from phat_runtime.state import EncryptedStore
from phat_runtime.errors import StateError
reader = EncryptedStore.open_reader(sys.argv[1], bytes.fromhex(sys.argv[2]))
key = bytes.fromhex(sys.argv[3])
for line in sys.stdin:
    if line.strip() == "write":
        with reader.reader() as view:
            try:
                view.set(key, b"x")
                print(json.dumps({"wrote": True}), flush=True)
            except StateError as exc:
                print(json.dumps({"refused": str(exc)}), flush=True)
        continue
    with reader.reader() as view:
        value = view.get(key)
        print(json.dumps({"number": view.checkpoint.number if view.checkpoint else None,
                          "value": None if value is None else value.hex(),
                          "root": view.state_root.hex()}), flush=True)
reader.close()
"""


def _child(path: Path, secret: bytes, key: bytes) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), secret.hex(), key.hex()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _ask(child: subprocess.Popen[str], line: str = "read") -> dict[str, object]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(line + "\n")
    child.stdin.flush()
    return json.loads(child.stdout.readline())  # type: ignore[no-any-return]


def test_another_process_reads_each_new_block(tmp_path: Path, secret: bytes) -> None:
    path = tmp_path / "state.db"
    with EncryptedStore.open(path, secret) as store:
        child = _child(path, secret, K1)
        try:
            assert _ask(child) == {"number": None, "value": None, "root": EMPTY_ROOT.hex()}
            for n in range(1, 6):
                store.set(K1, b"v%d" % n)
                assert _ask(child)["number"] == (None if n == 1 else n - 1)  # pending: invisible
                store.commit_block(n, _hash(n))
                assert _ask(child) == {"number": n, "value": (b"v%d" % n).hex(),
                                       "root": store.state_root.hex()}
            assert "read-only" in str(_ask(child, "write")["refused"])
            before = path.read_bytes()
            for _ in range(3):
                _ask(child)
            assert path.read_bytes() == before  # reading changed nothing in the database
        finally:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            code = child.wait(GUARD_S)
            child.stdout.close()
        assert code == 0


def test_open_reader_creates_nothing_and_refuses_what_it_cannot_read(tmp_path: Path,
                                                                     secret: bytes) -> None:
    missing = tmp_path / "nope" / "state.db"
    with pytest.raises(StateError, match="no initialised state store"):
        EncryptedStore.open_reader(missing, secret)
    assert not missing.parent.exists()
    path = tmp_path / "state.db"
    with EncryptedStore.open(path, secret) as store:
        _commit(store, 1, {K1: b"v1"})
    with pytest.raises(WrongStateKey):
        EncryptedStore.open_reader(path, os.urandom(64))
    with EncryptedStore.open_reader(path, secret) as reader:  # the writer is gone: still reads
        assert reader.checkpoint is not None and reader.checkpoint.number == 1
        with reader.reader() as view:
            assert view.get(K1) == b"v1"
            # The connection itself is read-only: SQLite refuses writes, whatever the caller does.
            with pytest.raises(Exception, match="readonly|read-only"):
                view._db.conn.execute("DELETE FROM kv")
    with pytest.raises(StateError, match="closed"):
        _ = reader.checkpoint
