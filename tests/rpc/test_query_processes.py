"""Query processes (``phat serve --query-processes N``, rpc/processes.py): queries answered by
other processes see what the main process committed, replays are refused whichever process a
frame lands on, secrets never show in a process's command line or environment, a killed query
process is started again, and query processes die with the main process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phat_runtime.crypto.signer import Signer
from phat_runtime.rpc.client import WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread, free_port
from phat_runtime.worker.service import Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts_examples"
ROOT = Path(__file__).resolve().parents[2]


class Conn:
    """One keep-alive HTTP/1.1 connection on a raw socket: (status, headers, body)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.reader = self.sock.makefile("rb")

    def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        head = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
                f"content-length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        status = int(self.reader.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, self.reader.read(int(headers.get("content-length", "0")))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, ServerThread, WorkerClient, Any]]:
    # The simulated TEE: development only.
    worker = Worker(WorkerConfig(data_dir=tmp_path_factory.mktemp("qp") / "worker"))
    server = ServerThread(worker, query_processes=2)
    with server as url:
        client = WorkerClient(url, policy=development_policy())
        flipper = client.deploy(EXAMPLES / "flipper" / "flipper.contract", "new", [True], signer=Signer.dev("alice"))
        yield worker, server, client, flipper
        client.close()


def _prepared_get(client: WorkerClient, flipper: Any, count: int = 1) -> list[Any]:
    payload = flipper.metadata.encode_message("get")
    return client.prepare_queries(flipper.address, payload, Signer.dev("alice"), count=count)


def _ask(url: str, prepared: Any) -> tuple[int, dict[str, str], bytes]:
    conn = Conn(url)
    try:
        return conn.post(prepared.path, prepared.body)
    finally:
        conn.close()


def test_a_query_process_sees_what_the_main_process_committed(cluster: Any) -> None:
    worker, server, client, flipper = cluster
    for expected in (True, False, True):
        (prepared,) = _prepared_get(client, flipper)
        status, headers, body = _ask(server.url, prepared)
        assert status == 200, body
        assert headers["x-phat-query-process"] in {"0", "1"}  # answered by a query process
        verified = prepared.finish(body)  # opens the answer, verifies the worker's receipt
        assert verified.outcome.data == bytes([0, int(expected)])
        assert verified.receipt.block == worker.pipeline.height
        flipper.transact("flip", signer=Signer.dev("alice"))  # /v2/tx, forwarded to the main process


def test_a_replayed_query_is_refused_by_every_process(cluster: Any) -> None:
    _, server, client, flipper = cluster
    (prepared,) = _prepared_get(client, flipper)
    first = Conn(server.url)
    status, headers, body = first.post(prepared.path, prepared.body)
    assert status == 200, body
    answered_by = headers["x-phat-query-process"]
    assert first.post(prepared.path, prepared.body)[0] == 409  # same process: counter already seen
    first.close()
    # Find a connection the other query process accepted, and replay the frame there.
    for _ in range(200):
        conn = Conn(server.url)
        probe = client.prepare_queries(flipper.address, flipper.metadata.encode_message("get"),
                                       Signer.dev("alice"), count=1)[0]
        status, headers, _ = conn.post(probe.path, probe.body)
        assert status == 200
        if headers["x-phat-query-process"] != answered_by:
            status, headers, body = conn.post(prepared.path, prepared.body)
            conn.close()
            assert headers["x-phat-query-process"] != answered_by
            assert status == 409, body
            assert json.loads(body)["error"]["code"] == "replayed_nonce"
            return
        conn.close()
    pytest.fail("200 connections all landed on one query process")


def test_no_secret_in_command_lines_or_environments(cluster: Any) -> None:
    worker, server, _, _ = cluster
    assert server.processes is not None
    secrets = [worker.identity.secret_bytes(), worker._cluster_secret, worker.identity.ecdh_private_bytes()]
    needles = [n for s in secrets for n in (s, s.hex().encode(), s.hex().upper().encode())]
    for pid in server.processes.pids:
        for name in ("cmdline", "environ"):
            blob = Path(f"/proc/{pid}/{name}").read_bytes()
            assert blob  # the process is alive and readable
            assert not any(n in blob for n in needles), f"a secret is in /proc/{pid}/{name}"


def test_a_killed_query_process_is_started_again(cluster: Any) -> None:
    _, server, client, flipper = cluster
    assert server.processes is not None
    before = server.processes.pids
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        child = server.processes.children[0]
        if child is not None and child.proc.pid != before[0] and child.ready.is_set():
            break
        time.sleep(0.1)
    else:
        pytest.fail("the killed query process was not started again")
    assert server.processes.restarts == 1
    for prepared in _prepared_get(client, flipper, 4):
        status, _, body = _ask(server.url, prepared)
        assert status == 200, body


def test_query_processes_die_with_the_main_process(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = subprocess.Popen([sys.executable, "-m", "phat_runtime.cli.main", "serve", "--data-dir",
                              str(tmp_path / "w"), "--port", str(port), "--query-processes", "2"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:
            time.sleep(0.2)
            assert serve.poll() is None, serve.stdout.read() if serve.stdout else ""
            children = _children_of(serve.pid)
        assert len(children) == 2, children
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), "a query process outlived the main process"
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if serve.stdout is not None:
            serve.stdout.close()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and b"query_host" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_main_process_sees_the_client_a_query_process_forwarded(cluster: Any) -> None:
    """The dashboard (served by the main process, reached through a query process) shows logs
    to loopback browsers only: it must see the real client, not the private socket — and a
    client cannot claim another address with the forwarding header."""
    import httpx

    _, server, _, _ = cluster
    page = httpx.get(server.url + "/", headers={"x-phat-client": "203.0.113.9"}, timeout=30)
    assert page.status_code == 200
    assert "Logs are shown only to a browser on the worker" not in page.text  # (HTML-escaped after)
    assert 'id="logs"' in page.text
