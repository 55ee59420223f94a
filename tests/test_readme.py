"""README's quick tour runs as written, and prints what its comments claim."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quick_tour_runs_and_matches_its_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # our own README
    lines = out.getvalue().splitlines()
    # Each `print(...)  # value` comment in the tour states the start of what is printed.
    claims = [m.group(1).strip() for m in re.finditer(r"print\(.*?\)\s+#\s*(.*)", code)]
    assert len(lines) == len(claims)
    for printed, claim in zip(lines, claims, strict=True):
        expected = claim.split("  ")[0].split(" (")[0].strip()
        assert printed.startswith(expected), (printed, claim)
