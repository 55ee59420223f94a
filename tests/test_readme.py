"""README runs as written: every shell command of its ```bash blocks verbatim (a real `phat
serve` in the background, the CLI against it, `phat demo`), the Python client snippet after
them against the same worker, and the in-process tour — each printing what its comments claim."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from doc_session import check_claims, run_session, to_run

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SS58 = re.compile(r"\b5[1-9A-HJ-NP-Za-km-z]{47}\b")


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_in_process_tour_runs_and_matches_its_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = [b for b in python_blocks() if "LocalCluster" in b]
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # our own README
    check_claims(code, out.getvalue())


def test_shell_commands_and_client_snippet_run_verbatim(tmp_path: Path) -> None:
    commands = to_run(README)
    assert commands[0] == "phat demo        # a worker on loopback with the example contracts, driven over encrypted RPC"
    (client_code,) = [b for b in python_blocks() if "WorkerClient" in b]
    session = run_session(tmp_path, [*commands, "python readme_client.py"],
                          files={"readme_client.py": client_code})
    for ran in session.ran + session.background:
        assert "Traceback" not in ran.output, ran.command
    for ran in session.ran:
        assert ran.returncode == 0, (ran.command, ran.output[-2000:])

    demo = session.ran[0]
    assert demo.stdout.count("verified") >= 7 and "InsufficientBalance" in demo.stdout
    assert "oracle.get_price" in demo.stdout

    by_word = {r.command.split()[1] + ":" + str(i): r for i, r in enumerate(session.ran[1:-1])}
    deploy, query, tx, query_again, logs, show, verify = by_word.values()
    (address,) = SS58.findall(deploy.stdout)
    for ran in (query, tx, query_again, logs):
        assert address in ran.command  # the address README prints is the one deploy gives
    assert "flipper" in deploy.stdout and "(new)" in deploy.stdout
    assert re.search(r"output\s*│\s*True", query.stdout) and "verified" in query.stdout
    assert re.search(r"result\s*│\s*ok", tx.stdout) and "block" in tx.stdout
    assert re.search(r"output\s*│\s*False", query_again.stdout)
    assert "no log records" in logs.stderr and "restart" in logs.stderr
    assert "SIMULATED TEE" in show.stdout and "identity key" in show.stdout
    assert "VERDICT: OK" in verify.stdout

    check_claims(client_code, session.ran[-1].stdout)

    (serve,) = session.background
    assert serve.command.startswith("phat serve --data-dir ./worker")
    assert serve.returncode == 0, serve.output  # stopped by Ctrl-C, cleanly
    assert serve.output.count("serving on http://127.0.0.1:8000") == 1
    assert serve.output.count("SIMULATED TEE") == 1  # the warning, once
    assert "worker stopped" in serve.output
    assert (session.cwd / "worker" / "identity.sealed").exists()
