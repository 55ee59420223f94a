#!/usr/bin/env python3
"""Build the example contracts into `.wasm`, ink! v4 metadata `.json` and `.contract` bundles.

    python contracts_examples/build.py            # rebuild, write next to each lib.rs
    python contracts_examples/build.py --out DIR  # write DIR/<name>/<name>.{wasm,json,contract}
    python contracts_examples/build.py --check    # rebuild in a temp dir; exit 1 if stale

The toolchain is Debian's wasm32 Rust (no crates.io, no cargo, no ink!): `phat_sdk` is
compiled once as an rlib, each contract as a staticlib linked against it (fat LTO), and
wasm-ld turns that into exactly the module shape cargo-contract produces — exports `call`
and `deploy` only, `env.memory` imported with 2 initial / 16 maximum pages, no custom
sections. Builds are byte-for-byte reproducible: fixed flags, one codegen unit, source and
temp paths remapped, no timestamps anywhere (the committed outputs are checked by
`tests/test_examples_build.py`).

Exit codes: 0 ok, 1 stale outputs (`--check`) or a build/consistency error, 2 toolchain
missing.
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import metadata  # noqa: E402  (sibling module, importable when run as a script)

#: Every folder holding a ``contract.toml`` is a contract (sorted, so builds are reproducible).
CONTRACTS = tuple(sorted(p.parent.name for p in HERE.glob("*/contract.toml")))
#: Outputs the package ships as well (the genesis system contract, runtime/genesis.py):
#: relative output path → path of the copy, kept byte-identical.
PACKAGED = {Path("system") / "system.contract": HERE.parent / "phat_runtime" / "runtime" / "system.contract"}
RUSTC = Path("/usr/bin/rustc")
TARGET = "wasm32-unknown-unknown"
APT_COMMAND = "apt-get install -y rustc libstd-rust-dev-wasm32 lld"
WASM_PAGE = 64 * 1024
#: cargo-contract's memory shape: 2 initial pages, at most 16.
INITIAL_MEMORY = 2 * WASM_PAGE
MAX_MEMORY = 16 * WASM_PAGE
#: Paths as they appear inside the build (and so in any embedded string).
REMAPPED_SOURCE = "/phat_runtime/contracts_examples"
REMAPPED_BUILD = "/build"

RUSTC_FLAGS = (
    f"--edition=2021 --target={TARGET} -C opt-level=z -C panic=abort -C codegen-units=1"
    " -C debuginfo=0"
).split()


class ToolchainMissing(Exception):
    pass


class BuildError(Exception):
    pass


def find_wasm_ld() -> Path | None:
    found = shutil.which("wasm-ld")
    if found:
        return Path(found)
    # Debian installs versioned names when no default is selected.
    candidates = sorted(glob.glob("/usr/bin/wasm-ld-*")) + sorted(
        glob.glob("/usr/lib/llvm-*/bin/wasm-ld")
    )
    return Path(candidates[-1]) if candidates else None


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    )
    if proc.returncode != 0:
        raise BuildError(f"command failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


class Toolchain:
    def __init__(self) -> None:
        wasm_ld = find_wasm_ld()
        if not RUSTC.exists() or wasm_ld is None:
            raise ToolchainMissing(
                f"need {RUSTC} (Debian rustc with the wasm32 std) and wasm-ld (lld)"
            )
        self.wasm_ld = wasm_ld
        libdir = Path(_run([str(RUSTC), "--print", "target-libdir", "--target", TARGET]))
        if not list(libdir.glob("libcore-*.rlib")):
            raise ToolchainMissing(f"{RUSTC} has no {TARGET} core library in {libdir}")
        self.rustc_version = _run([str(RUSTC), "--version"])
        self.wasm_ld_version = _run([str(wasm_ld), "--version"])

    @property
    def compiler(self) -> str:
        # cargo-contract writes "rustc <semver>" (no commit hash or date).
        return " ".join(self.rustc_version.split()[:2])

    def build_info(self) -> dict[str, str]:
        return {
            "build_mode": "Release",
            "builder": "contracts_examples/build.py (phat_sdk, no ink!/cargo-contract)",
            "linker": self.wasm_ld_version,
            "rust_toolchain": self.rustc_version,
        }

    def rustc(self, tmp: Path, *args: str) -> None:
        _run(
            [
                str(RUSTC),
                *RUSTC_FLAGS,
                f"--remap-path-prefix={HERE}={REMAPPED_SOURCE}",
                f"--remap-path-prefix={tmp}={REMAPPED_BUILD}",
                *args,
            ],
            cwd=HERE,
        )

    def link(self, staticlib: Path, out: Path) -> None:
        _run(
            [
                str(self.wasm_ld),
                "--no-entry",
                "--export=call",
                "--export=deploy",
                "--import-memory",
                f"--initial-memory={INITIAL_MEMORY}",
                f"--max-memory={MAX_MEMORY}",
                "--gc-sections",
                "--strip-all",
                "-o",
                str(out),
                str(staticlib),
            ]
        )


def compile_all(tc: Toolchain, tmp: Path, names: tuple[str, ...] = CONTRACTS) -> dict[str, bytes]:
    """name → wasm bytes for each contract in ``names``."""
    sdk = tmp / "libphat_sdk.rlib"
    tc.rustc(tmp, "--crate-name=phat_sdk", "--crate-type=rlib", "sdk/lib.rs", "-o", str(sdk))
    wasm = {}
    for name in names:
        staticlib = tmp / f"lib{name}.a"
        # Fat LTO lets the optimiser see through phat_sdk and drop core's formatting code.
        tc.rustc(
            tmp,
            f"--crate-name={name}",
            "--crate-type=staticlib",
            "-C",
            "lto=fat",
            f"--extern=phat_sdk={sdk}",
            f"{name}/lib.rs",
            "-o",
            str(staticlib),
        )
        out = tmp / f"{name}.wasm"
        tc.link(staticlib, out)
        wasm[name] = out.read_bytes()
    return wasm


_CONST_4 = re.compile(r"const\s+([A-Z0-9_]+)\s*:\s*(?:Selector|\[u8;\s*4\])\s*=\s*\[([^\]]*)\]\s*;")


def check_source(name: str, desc: dict[str, Any]) -> list[str]:
    """The Rust constants must say what the metadata says (selectors, Mapping root keys,
    event topic names) — the two are written separately, this keeps them in step."""
    src = (HERE / name / "lib.rs").read_text()
    consts = {
        m.group(1): bytes(int(b, 16) for b in m.group(2).replace(" ", "").split(",") if b)
        for m in _CONST_4.finditer(src)
    }
    problems = []
    for entry in desc["constructors"] + desc["messages"]:
        # A trait message `System::get_driver` has const SYSTEM_GET_DRIVER.
        const = entry["label"].upper().replace("::", "_")
        want = metadata.entry_selector(entry)
        got = consts.get(const)
        if got != want:
            problems.append(
                f"{name}: const {const} = {got and got.hex()}, metadata selector 0x{want.hex()}"
            )
    storage = desc["storage"]
    for field in storage["fields"]:
        if "mapping" in field:
            want = metadata.storage_root_key(storage["struct"], field["name"])
            const = f"{field['name'].upper()}_KEY"
            if consts.get(const) != want:
                problems.append(f"{name}: const {const} must be 0x{want.hex()}")
    for event in desc.get("events", []):
        topic = f'b"{storage["struct"]}::{event["label"]}"'
        if topic not in src:
            problems.append(f"{name}: event topic {topic} not found in lib.rs")
    return problems


def build_outputs(tc: Toolchain, names: tuple[str, ...] = CONTRACTS) -> dict[Path, bytes]:
    """Relative output path → content, for each contract in ``names``."""
    descs = {n: tomllib.loads((HERE / n / "contract.toml").read_text()) for n in names}
    problems = [p for n in names for p in check_source(n, descs[n])]
    if problems:
        raise BuildError("lib.rs and contract.toml disagree:\n  " + "\n  ".join(problems))
    with tempfile.TemporaryDirectory(prefix="phat-contracts-") as tmp:
        wasm = compile_all(tc, Path(tmp), names)
    outputs: dict[Path, bytes] = {}
    for name in names:
        for with_wasm, suffix in ((False, "json"), (True, "contract")):
            doc = metadata.build_metadata(
                descs[name], wasm[name], tc.compiler, tc.build_info(), with_wasm=with_wasm
            )
            outputs[Path(name) / f"{name}.{suffix}"] = metadata.dump(doc)
        outputs[Path(name) / f"{name}.wasm"] = wasm[name]
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="output root (default: next to the sources)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild in a temp dir and fail if the committed outputs differ",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"contracts to build (default: all of {', '.join(CONTRACTS)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(CONTRACTS))
    if unknown:
        print(f"build.py: unknown contract(s) {', '.join(unknown)}; "
              f"each needs a folder with contract.toml and lib.rs", file=sys.stderr)
        return 2
    try:
        tc = Toolchain()
    except ToolchainMissing as e:
        print(
            f"build.py: toolchain missing: {e}\n  install it with: {APT_COMMAND}", file=sys.stderr
        )
        return 2
    try:
        outputs = build_outputs(tc, tuple(args.names) or CONTRACTS)
    except BuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1

    if args.check:
        stale = [
            rel
            for rel, data in outputs.items()
            if not (HERE / rel).is_file() or (HERE / rel).read_bytes() != data
        ]
        stale += [
            copy.relative_to(HERE.parent)
            for rel, copy in PACKAGED.items()
            if rel in outputs and (not copy.is_file() or copy.read_bytes() != outputs[rel])
        ]
        for rel in stale:
            print(f"stale: {rel if rel.parts[0] == 'phat_runtime' else Path('contracts_examples') / rel}")
        if stale:
            print("run: python contracts_examples/build.py", file=sys.stderr)
            return 1
        print(f"up to date: {len(outputs)} files")
        return 0

    root = args.out or HERE
    for rel, data in outputs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel.suffix == ".wasm":
            print(f"{path}  {len(data)} bytes  0x{metadata.blake2_256(data).hex()}")
        if args.out is None and rel in PACKAGED:
            PACKAGED[rel].write_bytes(data)
            print(f"{PACKAGED[rel]}  (packaged copy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
