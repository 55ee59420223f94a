"""Every `phat` subcommand against a dead worker, bad URLs and bad paths: one line saying what
is wrong and what to do, a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from phat_runtime.cli.main import main
from phat_runtime.rpc.hosting import free_port

ROOT = Path(__file__).resolve().parent.parent
FLIPPER = str(ROOT / "contracts_examples" / "flipper" / "flipper.contract")
SAMPLES = ROOT / "tests" / "fixtures" / "attestation"
ADDRESS = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens there


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line(rc: int, out: str, err: str, expect: str) -> None:
    assert rc != 0, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert expect in lines[0], lines[0]


CLIENT_CASES = {
    "deploy, worker down": (["deploy", FLIPPER, "--dev", "--url", DEAD], "cannot reach the worker at"),
    "query, worker down": (["query", ADDRESS, "get", "--dev", "--url", DEAD], "is `phat serve` running"),
    "tx, worker down": (["tx", ADDRESS, "flip", "--dev", "--url", DEAD], "cannot reach the worker at"),
    "logs, worker down": (["logs", ADDRESS, "--dev", "--url", DEAD], "cannot reach the worker at"),
    "logs --follow, worker down": (["logs", ADDRESS, "--follow", "--dev", "--url", DEAD], "cannot reach"),
    "unknown host": (["query", ADDRESS, "get", "--dev", "--url", "http://no-such-host.invalid:8000"],
                     "cannot reach the worker at http://no-such-host.invalid:8000"),
    "url without scheme": (["query", ADDRESS, "get", "--url", "127.0.0.1:8000"],
                           "no scheme: use http://127.0.0.1:8000"),
    "url with another scheme": (["tx", ADDRESS, "flip", "--url", "ftp://x"], "not an http(s) URL"),
    "url with a bad port": (["logs", ADDRESS, "--url", "http://127.0.0.1:99999"], "bad port"),
    "missing bundle": (["deploy", "/nonexistent/x.contract", "--dev", "--url", DEAD], "not found"),
    "not a bundle": (["deploy", "/etc/hostname", "--dev", "--url", DEAD], "hostname"),
    "no constructor fits": (["deploy", FLIPPER, "--args", "[1, 2]", "--dev", "--url", DEAD],
                            "pass --constructor"),
    "bad args JSON": (["deploy", FLIPPER, "--args", "{nope", "--dev", "--url", DEAD], "--args is not JSON"),
    "bad address": (["query", "nonsense", "get", "--dev", "--url", DEAD], "contract address 'nonsense'"),
    "bad signer": (["tx", ADDRESS, "flip", "--suri", "mallory", "--dev", "--url", DEAD], "--suri 'mallory'"),
    "bad hex signer": (["tx", ADDRESS, "flip", "--suri", "0x12", "--dev", "--url", DEAD], "32-byte"),
    "missing policy": (["query", ADDRESS, "get", "--policy", "/nonexistent.toml", "--url", DEAD],
                       "cannot read policy file"),
    "keys inspect, bad account": (["keys", "inspect", "bogus"], "account 'bogus'"),
    "keys sign-in, not a sign-in text": (["keys", "sign-in", "phat_runtime/request/v1"],
                                         "not a dashboard sign-in text"),
    "keys sign-in, bad signer": (["keys", "sign-in", "x", "--suri", "mallory"], "--suri 'mallory'"),
    "missing examples": (["demo", "--examples", "/nonexistent"], "pass --examples DIR"),
    "local demo, missing examples": (["demo", "--local", "--examples", "/nonexistent"], "--examples"),
    "bench --iterations 0": (["bench", "--iterations", "0"], "--iterations: must be at least 1"),
    "bench --iterations -5": (["bench", "--iterations", "-5"], "must be at least 1"),
    "bench --iterations x": (["bench", "--iterations", "x"], "not a whole number"),
    "attest verify, missing quote": (["attest", "verify", "/nonexistent/quote"], "cannot read quote file"),
    "attest verify, missing collateral": (["attest", "verify", str(SAMPLES / "sgx_quote"), "--collateral",
                                           "/nonexistent.json"], "cannot read collateral file"),
    "attest verify, missing policy": (["attest", "verify", str(SAMPLES / "sgx_quote"), "--policy",
                                       "/nonexistent.json"], "cannot read policy file"),
    "attest show, no worker there": (["attest", "show", "--data-dir", "/nonexistent/w"], "no worker identity"),
    "attest show, a file": (["attest", "show", "--data-dir", "/etc/passwd"], "no worker identity"),
}


@pytest.mark.parametrize("case", list(CLIENT_CASES))
def test_client_commands_fail_in_one_line(capsys: pytest.CaptureFixture[str], case: str) -> None:
    argv, expect = CLIENT_CASES[case]
    assert_one_line(*run(capsys, argv), expect)


def test_serve_refuses_bad_data_dirs_ports_and_settings(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = str(free_port())
    cases = [
        (["--data-dir", "/etc/passwd"], "is a file, not a directory"),
        (["--data-dir", "/etc/passwd/sub"], "cannot create --data-dir /etc/passwd/sub"),
        (["--data-dir", "/proc/phat-worker"], "cannot create --data-dir /proc/phat-worker"),
        (["--port", str(busy.getsockname()[1])], "already in use"),
        (["--port", "70000"], "not a TCP port"),
        (["--host", "no-such-host.invalid"], "does not resolve"),
        (["--query-timeout-ms", "5"], "outside 5000–600000"),
        (["--platform", "tdx", "--tsm-dir", str(tmp_path), "--data-dir", str(tmp_path / "tdx")],
         "no hardware sealing key"),
        (["--platform", "gramine-sgx", "--gramine-dir", str(tmp_path / "none"), "--data-dir",
          str(tmp_path / "sgx")], "gramine"),
    ]
    try:
        for extra, expect in cases:
            argv = ["serve", "--port", port, "--data-dir", str(tmp_path / "w"), *extra]
            rc, out, err = run(capsys, argv)
            assert "serving on" not in out + err, extra
            assert_one_line(rc, out, err, expect)
    finally:
        busy.close()
    assert not (tmp_path / "w").exists()  # refused before anything was created


def test_missing_subcommands_print_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, listed in (([], "deploy"), (["keys"], "inspect"), (["attest"], "verify")):
        rc, _, err = run(capsys, argv)
        assert rc == 2 and "usage: phat" in err and listed in err
        assert "_command" not in err and "Traceback" not in err


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for command, shown in (("serve", "(default: .phat-worker)"), ("bench", "(default: 2000)"),
                           ("query", "(default: //Alice)")):
        rc, out, _ = run(capsys, [command, "--help"])
        assert rc == 0 and shown in " ".join(out.split()), out
        assert "(default: None)" not in out and "(default: False)" not in out


def test_an_unexpected_error_is_one_line_too(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from phat_runtime.cli import contracts

    def boom(args: object) -> int:
        raise KeyError("surprise")

    monkeypatch.setattr(contracts, "run", boom)
    assert_one_line(*run(capsys, ["keys", "generate"]), "this is a bug in phat; rerun with PHAT_TRACEBACK=1")


def test_the_installed_entry_point_prints_no_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "phat_runtime.cli.main", "query", ADDRESS, "get",
                           "--dev", "--url", DEAD], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: cannot reach the worker at {DEAD}")


def test_worker_refuses_a_bad_fallback_delay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for value in ("-1", "nan", "86400"):
        rc, out, err = run(capsys, ["worker", "--chain", "ws://127.0.0.1:9", "--cluster", "0x" + "00" * 32,
                                    "--data-dir", str(tmp_path / "w"), f"--fallback-s={value}"])
        assert_one_line(rc, out, err, "is outside 0–3600 seconds")
    assert not (tmp_path / "w").exists()  # refused before anything was created
