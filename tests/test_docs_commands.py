"""The docs stand on their own and their commands are true: links resolve, nothing points at
notes outside the repository, every `phat` command shown parses, and every shell command shown
is run verbatim by a test (or listed in doc_session.NOT_RUN with the reason it cannot be)."""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from pathlib import Path

import pytest
from doc_session import NOT_RUN, bash_commands, run_session, to_run, without_comment

from phat_runtime.cli.main import _parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "contracts_examples" / "README.md",
         ROOT / "tests" / "fixtures" / "metadata" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Which test runs the commands of each page.
RUNNERS = {
    "README.md": "tests/test_readme.py",
    "docs/guide.md": "tests/test_guide.py",
    "docs/operations.md": "tests/test_docs_commands.py",
    "contracts_examples/README.md": "tests/test_docs_commands.py",
}
OUTSIDE = re.compile(r"\.\./shared|shared/design|(?:HOST-ABI|ARCHITECTURE|PROTOCOL|STYLE|LIBRARY-NOTES)\.md|§")
#: A path into the repository in backticks: a file with an extension, or a folder ending in /.
REPO_PATH = re.compile(r"`((?:docs|tests|phat_runtime|contracts_examples|bench)/[\w./-]*(?:\.[a-z]+|/))`")


def rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", page.read_text(), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_links_resolve_and_stay_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert OUTSIDE.findall(text) == [], "cite docs/ pages, not design notes outside the repo"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{rel(page)}: broken link {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{rel(page)}: no heading #{anchor} in {path or rel(page)}"
    for path in REPO_PATH.findall(text):
        cleaned = path.rstrip(".").split("::")[0]
        if "<" in cleaned or "*" in cleaned:
            continue
        assert (ROOT / cleaned).exists(), f"{rel(page)}: `{path}` does not exist"


def test_every_page_with_commands_has_a_runner() -> None:
    for page in PAGES:
        if to_run(page):
            runner = RUNNERS.get(rel(page))
            assert runner is not None, f"{rel(page)} shows commands no test runs"
            assert rel(page) in (ROOT / runner).read_text() or page.name in (ROOT / runner).read_text()


def test_not_run_entries_are_still_shown() -> None:
    shown = {without_comment(c) for page in PAGES for c in bash_commands(page)}
    assert sorted(set(NOT_RUN) - shown) == []


def test_every_phat_command_shown_parses() -> None:
    parser = _parser()
    checked = 0
    for page in PAGES:
        text = page.read_text()
        # Inline `phat x` of fewer than three words names a command rather than showing one.
        inline = [c for c in re.findall(r"`(phat [^`]*)`", text) if len(c.split()) >= 3]
        for line in bash_commands(page) + inline:
            command = without_comment(line)
            if not command.startswith("phat ") or re.search(r"\b[A-Z][A-Z_]{2,}\b|…|\[--", command):
                continue  # a synopsis with placeholders (ADDRESS, [--at UNIX_TIME]) is prose
            checked += 1
            try:
                parser.parse_args(shlex.split(command)[1:])
            except SystemExit as exc:
                assert exc.code == 0, f"{rel(page)}: `{command}` does not parse"
    assert checked >= 30  # the README tour, the guide, operations

def test_operations_commands_run_verbatim(tmp_path: Path) -> None:
    commands = to_run(ROOT / "docs" / "operations.md")
    session = run_session(tmp_path, commands)
    for ran in session.ran:
        assert ran.returncode == 0 and "Traceback" not in ran.output, (ran.command, ran.output)
    show, generate, inspect = session.ran
    assert '"platform": "simulated"' in show.stdout
    assert generate.stdout.startswith("seed:       0x") and "ss58:" in generate.stdout
    assert "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" in inspect.stdout
    (serve,) = session.background
    assert serve.returncode == 0 and "serving on http://127.0.0.1:8000" in serve.output


def _wasm_ld() -> str | None:
    candidates = sorted(glob.glob("/usr/bin/wasm-ld-*") + glob.glob("/usr/lib/llvm-*/bin/wasm-ld"))
    return shutil.which("wasm-ld") or (candidates[-1] if candidates else None)


@pytest.mark.toolchain
@pytest.mark.skipif(not Path("/usr/bin/rustc").exists() or _wasm_ld() is None,
                    reason="needs Debian's wasm32 toolchain (apt-get install rustc libstd-rust-dev-wasm32 lld)")
def test_contracts_examples_commands_run_verbatim(tmp_path: Path) -> None:
    commands = to_run(ROOT / "contracts_examples" / "README.md")
    assert [without_comment(c) for c in commands] == [
        "python contracts_examples/build.py --check", "python contracts_examples/build.py --out build/x"]
    session = run_session(tmp_path, commands)
    for ran in session.ran:
        assert ran.returncode == 0, (ran.command, ran.output[-2000:])
    built = tmp_path / "build" / "x" / "ai_agent" / "ai_agent.wasm"
    assert built.read_bytes() == (ROOT / "contracts_examples" / "ai_agent" / "ai_agent.wasm").read_bytes()
