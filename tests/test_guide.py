"""docs/guide.md runs as written: every shell command verbatim, in order, against a real `phat
serve` and the chat-completions stand-in, with the guide's Python files saved under the names
it gives them (the signature check and the pytest file)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from doc_session import check_claims, run_session, to_run

from phat_runtime.testing.chat_stub import answer_for

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
SS58 = re.compile(r"\b5[1-9A-HJ-NP-Za-km-z]{47}\b")


def saved_files() -> dict[str, str]:
    """Each ```python block the guide says to save (`save as NAME`), by that name."""
    text = GUIDE.read_text()
    files = {}
    for name, code in re.findall(r"[Ss]ave as\s+`([\w.]+)`[^`]*?:\n\n```python\n(.*?)^```", text, flags=re.S | re.M):
        files[name] = code
    return files


def test_guide_runs_as_printed(tmp_path: Path) -> None:
    files = saved_files()
    assert sorted(files) == ["test_my_contracts.py", "verify_answer.py"]
    commands = to_run(GUIDE)
    session = run_session(tmp_path, commands, files=files)
    for ran in session.ran + session.background:
        assert "Traceback" not in ran.output, (ran.command, ran.output[-3000:])
    for ran in session.ran:
        assert ran.returncode == 0, (ran.command, ran.output[-3000:])
    out = {r.command: r for r in session.ran}

    def ran(prefix: str, *, nth: int = 0) -> str:
        return [r.output for c, r in out.items() if c.startswith(prefix)][nth]

    # 3. the token: deploy gives the address the guide prints; queries, a transfer, a revert.
    token = "5Cj2T9rQyo9jAaHNyewsSMWFJtyd5bebyFCpQX9obdWfM54G"
    assert SS58.findall(ran("phat deploy contracts_examples/token")) == [token]
    assert re.search(r"output\s*│\s*1000000", ran(f"phat query {token} total_supply"))
    assert "Transfer" in ran(f"phat tx {token} transfer --args '[\"bob\"")
    assert re.search(r"output\s*│\s*250", ran(f"phat query {token} balance_of"))
    revert = ran(f"phat tx {token} transfer --args '{{")
    assert re.search(r"result\s*│\s*reverted", revert) and "InsufficientBalance" in revert
    assert "writes were discarded" in " ".join(ran(f"phat query {token} transfer").split())

    # 4. the agent: configured by a transaction, its key never shown, a signed answer.
    agent = "5E1fgx6fQUktaJzsR6UVnNmfxWd6stiUPZRAjMYFopBqNXB5"
    assert SS58.findall(ran("phat deploy contracts_examples/ai_agent")) == [agent]
    assert re.search(r"result\s*│\s*ok", ran(f"phat tx {agent} configure"))
    config = ran(f"phat query {agent} config")
    assert "'has_api_key': True" in config and "sk-demo" not in config
    prompt = "What is a Phat contract?"
    assert answer_for("demo-model", prompt) in ran(f"phat query {agent} ask", nth=0)
    asked = json.loads(ran(f"phat query {agent} ask", nth=1))
    assert asked["output"]["Ok"]["answer"] == answer_for("demo-model", prompt)
    assert len(asked["output"]["Ok"]["signature"]) == 2 + 128
    check_claims(files["verify_answer.py"], out["python verify_answer.py"].stdout)

    # 5. logs: the agent's records with readable times; the token has none and says so.
    agent_logs = ran(f"phat logs {agent}")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC +info +\[query, block \d+\] +answered a prompt",
                     agent_logs), agent_logs
    assert "configured: endpoint, model and API key set by the owner" in agent_logs
    assert "sk-demo" not in agent_logs
    assert "no log records" in ran(f"phat logs {token}")

    # 6. the pytest file passes.
    assert "2 passed" in out["python -m pytest -q test_my_contracts.py"].stdout

    serve, stub = session.background
    assert serve.returncode == 0 and serve.output.count("SIMULATED TEE") == 1
    assert stub.command.startswith("python -m phat_runtime.testing.chat_stub")
