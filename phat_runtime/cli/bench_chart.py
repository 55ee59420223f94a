"""The numbers of one ``phat bench`` run: the summary against issue 12's targets, and a PNG.

:func:`summary` turns the parts' JSON into rows ``{metric, value, unit, target, met}`` (``met``
None where there is no target); :func:`draw` puts every part on one figure with matplotlib
(the ``bench`` extra: ``pip install -e '.[bench]'``). A part that did not run shows as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _row(metric: str, value: float, unit: str = "", target: str = "", met: bool | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": float(value), "unit": unit, "target": target, "met": met}


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    query = results.get("query")
    if query:
        rows.append(_row("query: Cluster.call / Linker floor", query["cluster_ratio"], "×", "≤ 1.5",
                         query["cluster_ratio"] <= 1.5))
        rows.append(_row("query: LocalCluster / Linker floor", query["local_ratio"], "×", "≤ 1.5",
                         query["local_ratio"] <= 1.5))
    rpc = results.get("rpc")
    if rpc:
        for c, level in rpc["levels"].items():
            if level["cpu_ratio"] is not None:  # None: /health used under one clock tick
                rows.append(_row(f"rpc c={c}: server CPU query / /health", level["cpu_ratio"], "×", "≤ 3",
                                 level["cpu_ratio"] <= 3))
            rows.append(_row(f"rpc c={c}: encrypted queries/s", level["query"]["rps"], "q/s",
                             "≥ 1500" if int(c) > 1 else "", level["query"]["rps"] >= 1500 if int(c) > 1 else None))
            rows.append(_row(f"rpc c={c}: query p50", level["query"]["p50_ms"], "ms"))
            rows.append(_row(f"rpc c={c}: query p99", level["query"]["p99_ms"], "ms"))
    tx = results.get("tx")
    if tx:
        target = tx.get("target_tx_per_s", 4000)
        rows.append(_row("tx: token transfers/s (wall)", tx["transfer"]["tx_per_s"], "tx/s", f"≥ {target}",
                         tx["transfer"]["tx_per_s"] >= target))
        rows.append(_row("tx: token transfers per CPU-second", tx["transfer"]["tx_per_cpu_s"], "tx/s"))
        rows.append(_row("tx: flips/s (wall)", tx["flip"]["tx_per_s"], "tx/s"))
    for batch in results.get("state") or []:
        target = batch.get("target") or 0
        rows.append(_row(f"state: write ratio, {int(batch['batch'])}-write blocks", batch["write_ratio"], "×",
                         f"≥ {target}" if target else "", batch["write_ratio"] >= target if target else None))
        rows.append(_row(f"state: read ratio, {int(batch['batch'])}-write blocks", batch["read_ratio"], "×"))
    cache = results.get("module_cache")
    if cache:
        rows.append(_row(f"module cache: cold compile, {cache['wasm_bytes'] / 1e6:.2f} MB", cache["cold_ms"], "ms"))
        rows.append(_row("module cache: warm (disk)", cache["warm_ms"], "ms"))
        rows.append(_row("module cache: cold / warm", cache["cold_over_warm"], "×"))
    rss = results.get("rss")
    if rss:
        rows.append(_row(f"worker RSS growth over {rss['queries']} queries", rss["rss_growth_bytes_per_query"],
                         "B/query", f"≤ {rss['target_bytes_per_query']}",
                         rss["rss_growth_bytes_per_query"] <= rss["target_bytes_per_query"]))
        rows.append(_row("worker RSS after", rss["rss_after_mb"], "MB"))
    return rows


def draw(report: dict[str, Any], path: Path) -> None:
    """Save the chart of ``report`` (the JSON ``phat bench`` writes) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    results = report["results"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    panels = [_query, _rpc_cpu, _rpc_latency, _tx, _state, _cache]
    for ax, panel in zip(axes.flat, panels, strict=True):
        if not panel(ax, results):
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{panel.__name__.strip('_')}: not run", ha="center", va="center")
    machine = report["machine"]
    fig.suptitle(f"phat bench{' --quick (numbers mean nothing)' if report['quick'] else ''} — "
                 f"{report['started']}, {machine['nproc']} cores {machine['cpu_model']}, load "
                 f"{machine['load_before'][0]:.1f}→{machine.get('load_after', [0])[0]:.1f}, commit {machine.get('commit')}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bars(ax: Any, labels: list[str], values: list[float], title: str, unit: str) -> None:
    ax.bar(labels, values, color="#4c72b0")
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)


def _query(ax: Any, results: dict[str, Any]) -> bool:
    q = results.get("query")
    if not q:
        return False
    _bars(ax, ["Linker floor", "Cluster.call", "LocalCluster"],
          [q["floor_median_us"], q["cluster_median_us"], q["local_median_us"]],
          f"query (flipper get): {q['cluster_ratio']:.2f}× / {q['local_ratio']:.2f}× the floor (target ≤ 1.5)", "µs")
    return True


def _rpc_cpu(ax: Any, results: dict[str, Any]) -> bool:
    rpc = results.get("rpc")
    if not rpc:
        return False
    levels = list(rpc["levels"])
    xs = range(len(levels))
    health = [rpc["levels"][c]["health"]["server_cpu_us"] for c in levels]
    query = [rpc["levels"][c]["query"]["server_cpu_us"] for c in levels]
    ax.bar([x - 0.2 for x in xs], health, 0.4, label="/health")
    ax.bar([x + 0.2 for x in xs], query, 0.4, label="encrypted query")
    for x, c in zip(xs, levels, strict=True):
        ratio = rpc["levels"][c]["cpu_ratio"]
        ax.annotate(f"{'?' if ratio is None else f'{ratio:.1f}'}×, {rpc['levels'][c]['query']['rps']:.0f} q/s",
                    (x + 0.2, query[x]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), [f"c={c}" for c in levels])
    ax.set_title("RPC server CPU per request (target query ≤ 3× /health)", fontsize=10)
    ax.set_ylabel("µs CPU")
    ax.legend(fontsize=8)
    return True


def _rpc_latency(ax: Any, results: dict[str, Any]) -> bool:
    rpc = results.get("rpc")
    if not rpc:
        return False
    levels = list(rpc["levels"])
    for q, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
        ax.plot([f"c={c}" for c in levels], [rpc["levels"][c]["query"][q] for c in levels], style, label=q[:3])
    ax.set_yscale("log")
    ax.set_title("encrypted query latency", fontsize=10)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    return True


def _tx(ax: Any, results: dict[str, Any]) -> bool:
    tx = results.get("tx")
    if not tx:
        return False
    _bars(ax, ["transfer (wall)", "transfer (CPU)", "flip (wall)", "flip (CPU)"],
          [tx["transfer"]["tx_per_s"], tx["transfer"]["tx_per_cpu_s"], tx["flip"]["tx_per_s"],
           tx["flip"]["tx_per_cpu_s"]], f"transactions, blocks of {tx['block_size']}", "tx/s")
    ax.axhline(tx.get("target_tx_per_s", 4000), color="red", linestyle=":", label="transfer target")
    ax.legend(fontsize=8)
    return True


def _state(ax: Any, results: dict[str, Any]) -> bool:
    state = results.get("state")
    if not state:
        return False
    labels, values = [], []
    for b in state:
        labels += [f"write {int(b['batch'])}", f"read {int(b['batch'])}"]
        values += [b["write_ratio"], b["read_ratio"]]
    _bars(ax, labels, values, "encrypted store / plain SQLite (target writes ≥ 0.8 / 0.9)", "ratio")
    for i, b in enumerate(state):
        if b.get("target"):
            ax.plot([2 * i - 0.4, 2 * i + 0.4], [b["target"]] * 2, color="red", linestyle=":")
    return True


def _cache(ax: Any, results: dict[str, Any]) -> bool:
    cache, rss = results.get("module_cache"), results.get("rss")
    if not cache and not rss:
        return False
    if cache:
        _bars(ax, ["cold (compile)", "warm (disk)", "hot (memory)"],
              [cache["cold_ms"], cache["warm_ms"], max(cache["hot_ms"], 1e-3)],
              f"module cache, {cache['wasm_bytes'] / 1e6:.2f} MB contract", "ms")
        ax.set_yscale("log")
    if rss:
        ax.text(0.98, 0.95, f"worker RSS after {rss['queries']} queries: {rss['rss_after_mb']:.0f} MB\n"
                f"growth {rss['rss_growth_bytes_per_query']:.0f} B/query (target ≤ {rss['target_bytes_per_query']})",
                transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return True
