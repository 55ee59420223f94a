"""Run documentation commands verbatim, the way a reader types them.

A session is a fresh directory that looks like a clone (``contracts_examples/`` and ``tests/``
linked in), a shell (``bash -c``) for each command exactly as printed, with ``phat`` and
``python`` on ``PATH`` meaning this checkout and interpreter. Long-running commands (``phat
serve``, the chat-completions stand-in) start in the background and are waited for until their
port accepts connections; when the session ends they get Ctrl-C (SIGINT) and their exit status
and output are part of the result.

Documented ports are literal (``phat serve`` listens on 8000 by default), so when the machine
allows it the session runs in a private network namespace (``unshare -rn``): the ports are
free whatever else runs here. Without one it runs on the host and checks the ports first.

Used by the tests as a module (:func:`run_session`); runs itself as a script inside the
namespace.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Commands shown in the docs that no test runs, and why. Every other command in a ```bash
#: block of README.md, docs/*.md or contracts_examples/README.md is run verbatim by a test
#: (tests/test_docs_commands.py checks that each such file has a runner).
_CLUSTER_DOCS = ("needs `phat devnet` with registered workers; tests/chain/test_cluster_client.py runs "
                 "these commands, taken from docs/operations.md, against chopsticks")
NOT_RUN = {
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e .":
        "installs from PyPI into a new venv: what CI's own setup (.ci/run) does",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m pytest":
        "the test run itself (.ci/run)",
    "apt-get install -y rustc libstd-rust-dev-wasm32 lld":
        "installs system packages as root (.ci/run does)",
    "python contracts_examples/build.py":
        "rewrites the committed outputs in place; `--check` below builds the same and compares",
    "phat serve --data-dir /var/lib/phat --platform gramine-sgx --host 0.0.0.0 --port 8000":
        "needs an SGX machine with Gramine (tests/test_cli_errors.py runs these flags without one)",
    "cargo contract new my_counter": "needs the ink! toolchain (cargo-contract), not installed here",
    "cd my_counter && cargo contract build --release": "needs the ink! toolchain, not installed here",
}


def section_commands(path: Path, heading: str) -> list[str]:
    """The command lines of the ```bash blocks under ``## heading`` (up to the next ``## ``)."""
    text = path.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
            for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


NOT_RUN.update({command: _CLUSTER_DOCS for command in section_commands(ROOT / "docs" / "operations.md",
                                                                        "Using a cluster")})
#: Commands that keep running, and the port each listens on unless it says ``--port N``.
BACKGROUND = {"phat serve": 8000, "python -m phat_runtime.testing.chat_stub": 8081}
COMMAND_TIMEOUT_S = 300
READY_TIMEOUT_S = 90


@dataclass
class Ran:
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Session:
    ran: list[Ran]            # foreground commands, in order
    background: list[Ran]     # long-running commands, after Ctrl-C
    cwd: Path

    def of(self, command: str) -> Ran:
        return next(r for r in self.ran + self.background if r.command == command)


def bash_commands(path: Path) -> list[str]:
    """The command lines of the ```bash blocks of a Markdown file, in order (comments kept:
    bash ignores them)."""
    text = path.read_text()
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        lines += [line.strip() for line in block.splitlines()
                  if line.strip() and not line.strip().startswith("#")]
    return lines


def without_comment(command: str) -> str:
    """``command`` without its trailing ``  # comment``."""
    return re.sub(r"\s+#\s.*$", "", command).strip()


def to_run(path: Path) -> list[str]:
    """The commands of ``path`` a test must run: all but :data:`NOT_RUN`."""
    return [c for c in bash_commands(path) if without_comment(c) not in NOT_RUN]


def check_claims(code: str, output: str) -> None:
    """Each `print(...)  # value` comment states the start of what that print shows."""
    lines = output.splitlines()
    claims = [m.group(1).strip() for m in re.finditer(r"print\(.*?\)\s+#\s*(.*)", code)]
    assert len(lines) == len(claims), (lines, claims)
    for printed, claim in zip(lines, claims, strict=True):
        expected = claim.split("  ")[0].split(" (")[0].strip()
        assert printed.startswith(expected), (printed, claim)


def background_port(command: str) -> int | None:
    for prefix, port in BACKGROUND.items():
        if command.startswith(prefix):
            words = command.split()
            if "--port" in words:
                return int(words[words.index("--port") + 1])
            return port
    return None


def run_session(work: Path, commands: list[str], files: dict[str, str] | None = None) -> Session:
    """Run ``commands`` in order in ``work``, made to look like a clone (``files`` are written
    into it first); every foreground command must finish within :data:`COMMAND_TIMEOUT_S`."""
    for name in ("contracts_examples", "tests"):
        (work / name).symlink_to(ROOT / name)
    for name, text in (files or {}).items():
        (work / name).write_text(text)
    spec = work / ".session.json"
    spec.write_text(json.dumps({"commands": commands}))
    own_net = _have_netns()
    if not own_net:
        busy = [p for c in commands if (p := background_port(c)) and not _port_free(p)]
        if busy:
            raise RuntimeError(f"ports {busy} are in use and this machine has no network namespaces "
                               "(`unshare -rn`): stop what listens there to run the documented commands")
    argv = [sys.executable, __file__, str(spec)]
    if own_net:
        argv = ["unshare", "-rn", *argv, "--netns"]
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S * (len(commands) + 1))
    result_file = work / ".session-result.json"
    if not result_file.exists():
        raise RuntimeError(f"the doc session failed to run: {done.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    return Session([Ran(**r) for r in result["ran"]], [Ran(**r) for r in result["background"]], work)


def _have_netns() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    return probe.returncode == 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- inside the session ----------------------------------------------------------------------


def _loopback_up() -> None:
    """A new network namespace starts with ``lo`` down; bring it up (SIOCSIFFLAGS)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, bytes(14))
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, request)[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, bytes(14)))


def _environment(work: Path) -> dict[str, str]:
    shims = work / ".bin"
    shims.mkdir(exist_ok=True)
    for name, target in (("phat", f'exec "{sys.executable}" -m phat_runtime.cli.main "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"'),
                         ("python3", f'exec "{sys.executable}" "$@"')):
        shim = shims / name
        shim.write_text(f"#!/bin/sh\n{target}\n")
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHAT_")}
    env["PATH"] = f"{shims}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    return env


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return  # exited: its output says why
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


def _session(spec_path: Path, own_net: bool) -> None:
    work = spec_path.parent
    if own_net:
        _loopback_up()
    env = _environment(work)
    commands: list[str] = json.loads(spec_path.read_text())["commands"]
    ran: list[dict[str, Any]] = []
    background: list[tuple[str, subprocess.Popen[str], Path, Path]] = []
    try:
        for command in commands:
            port = background_port(command)
            if port is not None:
                out, err = work / f".bg{len(background)}.out", work / f".bg{len(background)}.err"
                proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=work, env=env, text=True,
                                        stdout=out.open("w"), stderr=err.open("w"))
                background.append((command, proc, out, err))
                _wait_listening(port, proc)
                continue
            try:
                done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                                      text=True, timeout=COMMAND_TIMEOUT_S)
                ran.append({"command": command, "returncode": done.returncode,
                            "stdout": done.stdout, "stderr": done.stderr})
            except subprocess.TimeoutExpired as exc:
                ran.append({"command": command, "returncode": -1, "stdout": str(exc.stdout or ""),
                            "stderr": f"timed out after {COMMAND_TIMEOUT_S} s"})
    finally:
        stopped = []
        for command, proc, out, err in background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            stopped.append({"command": command, "returncode": proc.returncode,
                            "stdout": out.read_text(), "stderr": err.read_text()})
        (work / ".session-result.json").write_text(json.dumps({"ran": ran, "background": stopped}))


if __name__ == "__main__":
    _session(Path(sys.argv[1]), "--netns" in sys.argv[2:])
