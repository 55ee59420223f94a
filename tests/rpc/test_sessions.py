"""Encrypted sessions (wire format v2): one X25519 per session, counters refused when
replayed, sessions bounded in number and life, the client recovering from a forgotten session,
and the client refusing a worker that cannot prove it holds the attested ECDH key."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phat_runtime.crypto.e2e import EnvelopeError, new_x25519, session_keys
from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc import bodies
from phat_runtime.rpc.client import VerificationError, WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.rpc.server import RpcLimits
from phat_runtime.rpc.sessions import REPLAY_WINDOW, ReplayWindow, SessionTable
from phat_runtime.tee.policy import Policy
from phat_runtime.worker.error_codes import RpcError
from phat_runtime.worker.service import Worker, WorkerConfig

from .frames import BINARY, error, make_request, post_raw

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
FLIPPER = EXAMPLES / "flipper" / "flipper.contract"


# --- the replay window ---------------------------------------------------------------------------
def test_replay_window_accepts_each_counter_once_in_any_order() -> None:
    window = ReplayWindow()
    assert [window.accept(c) for c in (3, 1, 2, 3, 1, 7, 5, 5)] == [True, True, True, False, False, True, True, False]
    window.accept(7 + REPLAY_WINDOW)
    assert not window.accept(7)  # seen, and now outside the window
    assert not window.accept(6)  # never seen, but too old to tell: refused
    assert window.accept(8)  # the oldest counter still inside the window


@given(st.lists(st.integers(min_value=1, max_value=3 * REPLAY_WINDOW), max_size=300))
def test_replay_window_never_accepts_a_counter_twice(counters: list[int]) -> None:
    window = ReplayWindow()
    accepted = [c for c in counters if window.accept(c)]
    assert len(accepted) == len(set(accepted))


# --- the session table ---------------------------------------------------------------------------
def _table(**kw: int) -> tuple[SessionTable, list[float]]:
    worker_sk, worker_pk = new_x25519()
    now = [0.0]
    table = SessionTable(lambda pk, sid: session_keys(worker_sk, pk, pk, worker_pk, sid),
                         clock=lambda: now[0], **kw)
    return table, now


def test_sessions_are_bounded_and_evicted_least_recently_used() -> None:
    table, _ = _table(max_sessions=2)
    a, _ = table.open(new_x25519()[1])
    b, _ = table.open(new_x25519()[1])
    table.get(a.id)  # a is now more recent than b
    c, _ = table.open(new_x25519()[1])
    assert len(table) == 2 and table.evicted == 1
    assert table.get(a.id) is a and table.get(c.id) is c
    with pytest.raises(RpcError) as gone:
        table.get(b.id)
    assert gone.value.code == "unknown_session"


def test_sessions_expire() -> None:
    table, now = _table(lifetime_s=60)
    session, _ = table.open(new_x25519()[1])
    now[0] = 59.9
    assert table.get(session.id) is session
    now[0] = 60.0
    with pytest.raises(RpcError) as expired:
        table.get(session.id)
    assert expired.value.code == "unknown_session" and "POST /v2/session" in str(expired.value)
    assert len(table) == 0


def test_a_low_order_key_opens_no_session() -> None:
    table, _ = _table()
    with pytest.raises(EnvelopeError, match="low order"):
        table.open(bytes(32))
    assert len(table) == 0


# --- over HTTP -----------------------------------------------------------------------------------
def test_one_handshake_serves_many_requests(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    session = client.session()
    for _ in range(5):
        assert flipper.query("get", signer=alice).output is True
    assert client.session() is session
    metrics = client.http.get("/metrics").text
    assert "phat_rpc_sessions 1.0" in metrics  # deploy (2 tx) and 5 queries: one session


def test_a_replayed_frame_is_refused(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    prepared = client.prepare(make_request(client, alice, flipper.address, flipper.metadata.encode_message("get")))
    assert post_raw(client, prepared.body).status_code == 200
    status, code, message = error(post_raw(client, prepared.body))
    assert (status, code) == (409, "replayed_counter") and "new counter" in message


def test_frames_may_arrive_out_of_order(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    payload = flipper.metadata.encode_message("get")
    prepared = [client.prepare(make_request(client, alice, flipper.address, payload)) for _ in range(3)]
    for p in (prepared[2], prepared[0], prepared[1]):
        answer = client.http.post(p.path, content=p.body, headers=BINARY)
        assert answer.status_code == 200, answer.text
        assert p.finish(answer.content).outcome.data == b"\x00\x01"


def test_the_client_reopens_a_forgotten_session(tmp_path: Path, alice: Signer) -> None:
    # Room for one session: a second client's handshake evicts the first client's session.
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    with ServerThread(worker, limits=RpcLimits(max_sessions=1)) as url:
        first = WorkerClient(url, policy=development_policy())
        flipper = first.deploy(FLIPPER, "new", [True], signer=alice)
        old = first.session()
        second = WorkerClient(url, policy=development_policy())
        second.session()
        stale = first.prepare(make_request(first, alice, flipper.address, flipper.metadata.encode_message("get")),
                              old)
        assert error(post_raw(first, stale.body))[:2] == (401, "unknown_session")
        # The client notices, opens a new session and sends the same signed request again.
        assert first.send(stale.request)[0].session is not old
        assert flipper.query("get", signer=alice).output is True
        first.close()
        second.close()


def test_the_client_refuses_a_worker_that_cannot_confirm_the_session(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    client.attest()
    # As if the attested ECDH key were another: the worker's confirmation cannot match.
    client._info = replace(client.info(), ecdh=new_x25519()[1])
    with pytest.raises(VerificationError, match="ECDH"):
        client.open_session()


def test_no_session_before_the_worker_is_attested(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    strict = WorkerClient(served[1].url, policy=Policy())  # refuses the simulated platform
    with pytest.raises(VerificationError, match="attestation"):
        strict.query(bytes(32), b"\x2f\x86\x5b\xd9", alice)
    assert "phat_rpc_sessions 0.0" in strict.http.get("/metrics").text  # nothing was sent
    strict.close()


def test_a_tampered_or_misdirected_answer_fails_verification(served, alice: Signer) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    payload = flipper.metadata.encode_message("get")
    first, second = (client.prepare(make_request(client, alice, flipper.address, payload)) for _ in range(2))
    answer = client.http.post(first.path, content=first.body, headers=BINARY).content
    tampered = bytearray(answer)
    tampered[-1] ^= 1
    with pytest.raises(VerificationError, match="does not open"):
        first.finish(bytes(tampered))
    with pytest.raises(VerificationError, match="answers message"):
        second.finish(answer)  # the answer to another request of the same session
    assert first.finish(answer).outcome.data == b"\x00\x01"


def test_session_keys_differ_per_session_and_direction() -> None:
    worker_sk, worker_pk = new_x25519()
    client_sk, client_pk = new_x25519()
    sid = os.urandom(16)
    ours = session_keys(client_sk, worker_pk, client_pk, worker_pk, sid)
    theirs = session_keys(worker_sk, client_pk, client_pk, worker_pk, sid)
    sealed = bodies.seal_request(ours, sid, 1, bodies.Route.QUERY, b"hello")
    frame = bodies.parse_request(sealed)
    assert bodies.open_request(theirs, frame, bodies.Route.QUERY) == b"hello"
    other = session_keys(client_sk, worker_pk, client_pk, worker_pk, os.urandom(16))
    with pytest.raises(EnvelopeError):
        bodies.open_request(other, frame, bodies.Route.QUERY)  # a replayed handshake gets new keys
    answer = bodies.seal_response(theirs, 1, bodies.Route.QUERY, b"world")
    assert bodies.open_response(ours, 1, bodies.Route.QUERY, answer) == b"world"
    with pytest.raises(EnvelopeError):  # a response cannot pass for a request
        bodies.open_request(theirs, bodies.RequestFrame(sid, 1, answer[9:]), bodies.Route.QUERY)
