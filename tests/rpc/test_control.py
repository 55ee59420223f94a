"""The control channel (rpc/control.py): once a query process dispatches, messages the main
process sends on its own (``keys``) go to their handler, answers to the request waiting for
them, whatever the order they arrive in; a closed channel fails every request at once."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from phat_runtime.rpc.control import Channel, ControlClosed


def test_notices_and_answers_interleaved() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child, main = Channel(a), Channel(b)
    seen: list[list[Any]] = []
    got = threading.Event()

    def on_keys(message: list[Any]) -> None:
        seen.append(message)
        child.send(["keys-held", message[1]])
        got.set()

    child.dispatch({"keys": on_keys})

    def serve() -> None:
        request = main.recv()
        assert request == ["lookup", b"id"]
        main.send(["keys", 1, [[0, b"k" * 64]]])  # a notice before the answer
        assert main.recv() == ["keys-held", 1]
        main.send(["none"])

    server = threading.Thread(target=serve)
    server.start()
    assert child.request(["lookup", b"id"]) == ["none"]
    server.join(5)
    assert got.wait(5) and seen == [["keys", 1, [[0, b"k" * 64]]]]
    main.close()
    for _ in range(2):  # every later request fails too, none hangs
        with pytest.raises(ControlClosed):
            child.request(["lookup", b"id"])
    child.close()


def test_a_failing_handler_does_not_stop_the_channel() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child, main = Channel(a), Channel(b)

    def broken(message: list[Any]) -> None:
        raise ValueError("bad keys")

    child.dispatch({"keys": broken})
    main.send(["keys", 1, []])
    threading.Thread(target=lambda: (main.recv(), main.send(["ok"])), daemon=True).start()
    assert child.request(["publish", b"id", b"pk", 1.0]) == ["ok"]
    main.close()
    child.close()
