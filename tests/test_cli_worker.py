"""`phat deploy | query | tx | logs` against a live worker: constructor choice, addresses in
one format, dev names in --args, writes discarded by queries, logs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from phat_runtime.cli.main import main
from phat_runtime.crypto.accounts import dev_account, parse_account, to_ss58
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.worker.service import Worker, WorkerConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "contracts_examples"
FLIPPER = str(EXAMPLES / "flipper" / "flipper.contract")
TOKEN = str(EXAMPLES / "token" / "token.contract")
SYSTEM = str(EXAMPLES / "system" / "system.contract")
SS58 = re.compile(r"\b5[1-9A-HJ-NP-Za-km-z]{47}\b")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    worker = Worker(WorkerConfig(data_dir=tmp_path_factory.mktemp("worker")))
    with ServerThread(worker) as running:
        yield running


def phat(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    rc = main([*argv, "--url", url, "--dev"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def deploy(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> dict[str, str]:
    rc, out, err = phat(capsys, url, "deploy", *argv, "--json")
    assert rc == 0, err
    doc: dict[str, str] = json.loads(out)
    return doc


def test_constructor_follows_the_arguments(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert deploy(capsys, url, FLIPPER, "--args", "[true]", "--salt", "c1")["constructor"] == "new"
    assert deploy(capsys, url, FLIPPER, "--salt", "c2")["constructor"] == "default"
    assert deploy(capsys, url, FLIPPER, "--args", '{"init_value": false}', "--salt", "c3")["constructor"] == "new"
    made = deploy(capsys, url, FLIPPER, "--constructor", "default", "--salt", "c4")
    rc, out, _ = phat(capsys, url, "query", made["address"], "get", "--json")
    assert rc == 0 and json.loads(out)["output"] is False


def test_addresses_print_as_ss58_or_hex_on_request(capsys: pytest.CaptureFixture[str], url: str) -> None:
    rc, out, _ = phat(capsys, url, "deploy", FLIPPER, "--args", "[true]", "--salt", "a1")
    assert rc == 0
    (address,) = SS58.findall(out)
    assert "0x" + parse_account(address).hex() not in out
    rc, out, _ = phat(capsys, url, "query", address, "get")
    assert rc == 0 and "0x" not in out.split("receipt")[1].split("state root")[0]
    worker = SS58.findall(out)
    assert len(worker) == 1  # the receipt's signer, as SS58
    rc, out, _ = phat(capsys, url, "query", address, "get", "--hex")
    assert "0x" + parse_account(worker[0]).hex() in re.sub(r"[│\s]", "", out)

    rc, out, _ = phat(capsys, url, "deploy", FLIPPER, "--args", "[true]", "--salt", "a2", "--hex")
    assert rc == 0 and re.search(r"0x[0-9a-f]{64}", out) and not SS58.search(out)


def test_a_second_deploy_names_the_address_once_and_says_to_change_the_salt(
        capsys: pytest.CaptureFixture[str], url: str) -> None:
    first = deploy(capsys, url, TOKEN, "--args", "[1000]", "--salt", "dup")
    rc, _, err = phat(capsys, url, "deploy", TOKEN, "--args", "[1000]", "--salt", "dup")
    assert rc == 1 and err.count("DuplicateContract") == 1
    assert first["address"] in err and "another salt" in err and "0x" not in err


def test_dev_names_in_args(capsys: pytest.CaptureFixture[str], url: str) -> None:
    token = deploy(capsys, url, TOKEN, "--args", "[1000]", "--salt", "dev-names")["address"]
    rc, out, err = phat(capsys, url, "tx", token, "transfer", "--args", '["bob", 10]', "--json")
    assert rc == 0, err
    event = json.loads(out)["events"][0]
    assert event["args"]["to"] == to_ss58(dev_account("bob"))
    for who in ('"//Bob"', '"bob"', f'"{to_ss58(dev_account("bob"))}"', f'"0x{dev_account("bob").hex()}"'):
        rc, out, _ = phat(capsys, url, "query", token, "balance_of", "--args", f"[{who}]", "--json")
        assert json.loads(out)["output"] == 10, who
    rc, out, _ = phat(capsys, url, "query", token, "balance_of", "--args", '["bob"]', "--suri", "charlie",
                      "--json")
    assert json.loads(out)["output"] == 10
    rc, _, err = phat(capsys, url, "query", token, "balance_of", "--args", '["mallory"]')
    assert rc == 1 and "argument 'owner'" in err and "dev name" in err


def test_a_query_of_a_mutating_message_says_its_writes_were_discarded(
        capsys: pytest.CaptureFixture[str], url: str) -> None:
    flipper = deploy(capsys, url, FLIPPER, "--args", "[true]", "--salt", "discard")["address"]
    rc, out, _ = phat(capsys, url, "query", flipper, "flip")
    assert rc == 0 and "writes were discarded" in " ".join(out.split()) and "phat tx" in out
    rc, out, _ = phat(capsys, url, "query", flipper, "flip", "--json")
    assert json.loads(out)["writes_discarded"] is True
    rc, out, _ = phat(capsys, url, "query", flipper, "get", "--json")
    assert json.loads(out)["writes_discarded"] is False and json.loads(out)["output"] is True
    rc, out, _ = phat(capsys, url, "tx", flipper, "flip")
    assert rc == 0 and "discarded" not in out


def test_logs_empty_then_records_with_readable_times(capsys: pytest.CaptureFixture[str], url: str) -> None:
    system = deploy(capsys, url, SYSTEM, "--salt", "logs")["address"]
    rc, out, err = phat(capsys, url, "logs", system)
    assert rc == 0 and out == "" and "no log records" in err and "restart" in err
    rc, out, _ = phat(capsys, url, "logs", system, "--json")
    assert rc == 0 and json.loads(out) == []

    rc, _, err = phat(capsys, url, "query", system, "System::upgrade_runtime", "--args", "[[1, 3]]")
    assert rc == 0, err
    rc, out, err = phat(capsys, url, "logs", system)
    assert rc == 0 and err == ""
    line = next(line for line in out.splitlines() if "Upgrading pink contract runtime" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC +info +\[query, block \d+\]", line), line
    rc, out, _ = phat(capsys, url, "logs", system, "--json")
    records = json.loads(out)
    assert any(r["message"] == "Upgrading pink contract runtime..." for r in records)
    assert all(isinstance(r["timestamp_ms"], int) for r in records)


def test_an_unknown_contract_is_named_as_given(capsys: pytest.CaptureFixture[str], url: str) -> None:
    nobody = to_ss58(bytes(range(32)))
    rc, _, err = phat(capsys, url, "query", nobody, "get")
    assert rc == 1 and err.count("\n") == 1 and f"no contract at {nobody} on {url}" in err
    rc, _, err = phat(capsys, url, "tx", nobody, "flip", "--hex")
    assert rc == 1 and f"no contract at 0x{bytes(range(32)).hex()}" in err
    rc, _, err = phat(capsys, url, "logs", nobody)
    assert rc == 1 and err.count("\n") == 1 and f"no contract at {nobody}" in err
