"""``phat bench``: the whole benchmark suite of a source checkout (``bench/``) in one command.

Each part runs as its own process (``python bench/<script>.py … --json``) so one part's
memory, threads and caches never touch the next one's numbers; the RPC part starts its own
server process (``phat serve``) and is the load generator. Progress shows which part runs and
its latest status line; the results — every part's JSON, a summary of the headline numbers
against the targets of issue 12, and the machine (cores, CPU model, load before and after) —
are saved as ``DIR/bench-<time>.json`` next to a chart ``DIR/bench-<time>.png``
(:mod:`phat_runtime.cli.bench_chart`). A part that fails is recorded with its error; the rest
still run and the command exits 1. ``--quick`` runs every part with tiny counts: it checks
that the suite works end to end, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phat_runtime.cli.common import console, non_negative_int, positive_int

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
SCHEMA = "phat-bench/1"
DEFAULT_OUT = Path("bench-results")


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


PARTS = (
    Part("query", "in-process query vs the wasmtime Linker floor", "bench_query.py",
         ("--rss-queries", "0"), ("--batch", "10", "--rss-queries", "0")),
    Part("rpc", "encrypted RPC: server CPU per query vs /health, c = 1/8/32", "bench_rpc.py",
         ("--requests", "640", "--rounds", "3"), ("--requests", "160", "--rounds", "1")),
    Part("tx", "transaction apply rate, blocks of 256", "bench_tx.py",
         ("--blocks", "10"), ("--blocks", "2", "--block-size", "32")),
    Part("state", "encrypted state store vs plain SQLite", "bench_state.py",
         ("--blocks", "30"), ("--blocks", "3", "--batches", "100", "--reads", "200")),
    Part("module_cache", "module cache cold vs warm, ~1 MB contract", "bench_module_cache.py",
         (), ("--size-kb", "64", "--rounds", "1")),
    Part("rss", "worker RSS over 10,000 queries", "bench_worker_rss.py",
         ("--queries", "10000"), ("--queries", "200", "--warmup", "20")),
)
NAMES = [p.name for p in PARTS]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite; JSON and a PNG chart under --out")
    p.add_argument("--quick", action="store_true",
                   help="tiny counts: checks the suite runs (seconds, not minutes); numbers mean nothing")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where bench-<time>.json and .png go (created if missing)")
    p.add_argument("--only", type=_parts, default=None, metavar="PARTS",
                   help=f"comma-separated parts to run, of: {', '.join(NAMES)} (default: all)")
    p.add_argument("--iterations", type=positive_int, default=2000, metavar="N",
                   help="query part: calls per side (with --quick at most 100)")
    p.add_argument("--query-processes", type=non_negative_int, default=None, metavar="N",
                   help="rpc part: the server's --query-processes (default: its own, one per core)")


def _parts(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown) or text!r}: choose from {', '.join(NAMES)}")
    return names


def run(args: argparse.Namespace) -> int:
    if not BENCH_DIR.is_dir():
        console.print(f"[red]error:[/] {BENCH_DIR} not found — `phat bench` needs a source checkout")
        return 1
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from phat_runtime.cli.bench_chart import draw, summary

    parts = [p for p in PARTS if args.only is None or p.name in args.only]
    report: dict[str, Any] = {"schema": SCHEMA, "quick": args.quick, "started": _now(),
                              "machine": machine(), "results": {}, "errors": {}, "seconds": {}}
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[part]}[/]"), BarColumn(bar_width=20),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  TextColumn("[dim]{task.description}[/]"), console=console, transient=False) as progress:
        task = progress.add_task("", total=len(parts), part="")
        for part in parts:
            progress.update(task, part=part.name, description=part.title)
            started = time.monotonic()
            result, error = run_part(
                part, _arguments(part, args),
                lambda line, p=part: progress.update(task, description=f"{p.title}: {line[:70]}"))
            if error is None:
                report["results"][part.name] = result
            else:
                report["errors"][part.name] = error
            report["seconds"][part.name] = round(time.monotonic() - started, 1)
            progress.advance(task)
    report["machine"]["load_after"] = list(os.getloadavg())
    report["finished"] = _now()
    report["summary"] = summary(report["results"])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    draw(report, png_path)
    _print_summary(report)
    console.print(f"saved {json_path} and {png_path}", highlight=False)
    for name, error in report["errors"].items():
        console.print(f"[red]{name} failed:[/] {error}", highlight=False)
    return 1 if report["errors"] else 0


def _arguments(part: Part, args: argparse.Namespace) -> list[str]:
    extra = list(part.quick if args.quick else part.full)
    if part.name == "query":
        extra += ["--iterations", str(min(args.iterations, 100) if args.quick else args.iterations)]
    if part.name == "rpc" and args.query_processes is not None:
        extra += ["--query-processes", str(args.query_processes)]
    return extra


def run_part(part: Part, extra: list[str], status: Any) -> tuple[Any, str | None]:
    """Run one bench script with ``--json``: (its parsed JSON, None) or (None, what failed).
    Stderr lines feed ``status``."""
    root = BENCH_DIR.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(BENCH_DIR / part.script), *extra, "--json"], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.strip()
            if line:
                tail[:] = [*tail[-19:], line]
                status(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    out, _ = proc.communicate()
    reader.join(timeout=5)
    if proc.returncode != 0:
        return None, f"bench/{part.script} exited with {proc.returncode}: " + " | ".join(tail[-3:])
    start = min((i for i in (out.find("{"), out.find("[")) if i >= 0), default=-1)
    try:
        return (json.loads(out[start:]) if start >= 0 else json.loads(out)), None
    except ValueError as exc:
        return None, f"bench/{part.script} printed no JSON ({exc}): {out[-200:]!r}"


def machine() -> dict[str, Any]:
    """What the numbers ran on: a shared 2-core VM reads very differently from a quiet laptop."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {"nproc": os.cpu_count(), "cpu_model": model or platform.processor(),
            "load_before": list(os.getloadavg()), "python": platform.python_version(),
            "platform": platform.platform(), "wasmtime": version("wasmtime"), "commit": _commit()}


def _commit() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR.parent,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _print_summary(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"phat bench{' --quick (numbers mean nothing)' if report['quick'] else ''}")
    for column in ("metric", "value", "target", "met"):
        table.add_column(column)
    for row in report["summary"]:
        met = "—" if row["met"] is None else ("[green]yes[/]" if row["met"] else "[red]no[/]")
        table.add_row(row["metric"], f"{row['value']:.4g} {row['unit']}".strip(), row["target"] or "", met)
    machine = report["machine"]
    console.print(table)
    console.print(f"{machine['nproc']} cores, {machine['cpu_model']}; load {machine['load_before'][0]:.1f} → "
                  f"{machine['load_after'][0]:.1f}", highlight=False)
