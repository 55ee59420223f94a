"""A stand-in for an OpenAI-compatible chat-completions API, for tests and the guide.

A real HTTP server on loopback (``ThreadingHTTPServer``) serving ``POST /v1/chat/completions``:
it checks ``Authorization: Bearer <api_key>`` (401 with OpenAI's error shape otherwise), reads
the request's ``model`` and last user message, and answers deterministically::

    {"choices": [{"message": {"role": "assistant", "content": "<model> says: <reversed prompt>"}, ...}], ...}

Every request is recorded (method, path, headers, JSON body) in :attr:`ChatStub.requests`.

    with ChatStub(api_key="sk-test") as stub:
        stub.url                 # http://127.0.0.1:PORT/v1/chat/completions

or from a shell (the guide does this)::

    python -m phat_runtime.testing.chat_stub --port 8081 --api-key sk-demo

Must not: be imported by product code.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/chat/completions"
#: Requests larger than this are refused with 413.
MAX_BODY = 1024 * 1024


def answer_for(model: str, prompt: str) -> str:
    """The stand-in's deterministic answer: the model name and the prompt reversed."""
    return f"{model} says: {prompt[::-1]}"


class ChatStub:
    """The server, on its own thread while used as a context manager."""

    def __init__(self, *, api_key: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, name="chat-stub", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def __enter__(self) -> ChatStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _handler(stub: ChatStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                return self._send(413, _error("request too large", "invalid_request_error"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            stub.record({"method": "POST", "path": self.path, "headers": dict(self.headers.items()),
                         "body": body})
            if self.path != PATH:
                return self._send(404, _error(f"unknown path {self.path}", "invalid_request_error"))
            if self.headers.get("authorization") != f"Bearer {stub.api_key}":
                return self._send(401, _error("Incorrect API key provided.", "invalid_api_key"))
            try:
                model = str(body["model"])
                prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
            except (TypeError, KeyError, StopIteration):
                return self._send(400, _error("need model and a user message", "invalid_request_error"))
            self._send(200, {
                "id": f"chatcmpl-stub-{len(stub.requests)}", "object": "chat.completion",
                "created": 1700000000, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer_for(model, str(prompt))}}],
                "usage": {"prompt_tokens": len(str(prompt).split()), "completion_tokens": 0,
                          "total_tokens": len(str(prompt).split())},
            })

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phat_runtime.testing.chat_stub",
                                     description="an OpenAI-compatible chat-completions stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--api-key", required=True, help="the only key it accepts")
    args = parser.parse_args(argv)
    stub = ChatStub(api_key=args.api_key, host=args.host, port=args.port)
    print(f"chat stand-in on {stub.url} (test double: answers deterministically)", flush=True)
    try:
        stub.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stub.server.server_close()


if __name__ == "__main__":
    main()
