"""The AI-agent example (contracts_examples/ai_agent) end to end: a real worker over encrypted
RPC, the contract's own HTTP request to a local OpenAI-compatible stand-in that checks the API
key, the signed answer checked with py-sr25519-bindings, and the key never leaving the
contract. The worker's egress policy allows loopback for these tests only; the product
default refuses it, and one test shows the request never leaves then."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sr25519

from phat_runtime.crypto.signer import Signer
from phat_runtime.pink.egress import EgressPolicy, HttpxEgress
from phat_runtime.rpc.client import RemoteContract, WorkerClient, development_policy
from phat_runtime.rpc.hosting import ServerThread
from phat_runtime.testing.chat_stub import ChatStub, answer_for
from phat_runtime.worker.service import Worker, WorkerConfig

AGENT = Path(__file__).resolve().parent.parent / "contracts_examples" / "ai_agent" / "ai_agent.contract"
API_KEY = "sk-test-0123456789abcdef"
MODEL = "demo-model"
ALICE, BOB = Signer.dev("alice"), Signer.dev("bob")


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def signed_message(address: bytes, prompt: str, answer: str) -> bytes:
    """What the agent signs (contracts_examples/README.md, "The AI agent")."""
    return (b"ai_agent/answer/v1" + address + blake2_256(prompt.encode())
            + blake2_256(answer.encode()))


@pytest.fixture(scope="module")
def stub() -> Iterator[ChatStub]:
    with ChatStub(api_key=API_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker")


@pytest.fixture(scope="module")
def client(worker_dir: Path) -> Iterator[WorkerClient]:
    egress = HttpxEgress(EgressPolicy(allow_loopback=True))  # the stand-in is on loopback
    with ServerThread(Worker(WorkerConfig(data_dir=worker_dir, egress=egress))) as url:
        c = WorkerClient(url, policy=development_policy())
        yield c
        c.close()


@pytest.fixture(scope="module")
def agent(client: WorkerClient, stub: ChatStub) -> RemoteContract:
    agent = client.deploy(AGENT, "new", [], signer=ALICE)
    done = agent.transact("configure", [stub.url, MODEL, API_KEY], signer=ALICE)
    assert done.success and done.output == {"Ok": None}
    return agent


def test_unconfigured_agent_refuses_to_ask(client: WorkerClient) -> None:
    fresh = client.deploy(AGENT, "new", [], signer=ALICE, salt=b"unconfigured")
    assert fresh.query("config", signer=BOB).output == {"endpoint": "", "model": "", "has_api_key": False}
    assert fresh.query("ask", ["hello"], signer=BOB).output == {"Err": "NotConfigured"}


def test_answers_are_fetched_with_the_key_and_signed(agent: RemoteContract, stub: ChatStub) -> None:
    stub.requests.clear()
    prompt = 'Say "hi" in\ttwo lines\nplease — ünïcødé 😀 \\ done'
    result = agent.query("ask", [prompt], signer=BOB)
    answer = result.output["Ok"]
    assert answer["answer"] == answer_for(MODEL, prompt)
    # What the stand-in received: the key as a bearer token, the prompt as one user message.
    (request,) = stub.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["content-type"] == "application/json"
    assert request["body"] == {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    # Anyone can check the signature against the contract's public key.
    public_key = unhex(agent.query("public_key", signer=BOB).output)
    signature = unhex(answer["signature"])
    assert unhex(answer["signer"]) == public_key and len(signature) == 64
    message = signed_message(agent.address, prompt, answer["answer"])
    assert sr25519.verify(signature, message, public_key)
    assert not sr25519.verify(signature, signed_message(agent.address, prompt, "forged"), public_key)
    assert not sr25519.verify(signature, signed_message(bytes(32), prompt, answer["answer"]), public_key)


def test_another_agent_has_another_key(client: WorkerClient, agent: RemoteContract) -> None:
    other = client.deploy(AGENT, "new", [], signer=ALICE, salt=b"other")
    assert other.query("public_key", signer=BOB).output != agent.query("public_key", signer=BOB).output


def test_only_the_owner_configures_and_the_key_is_never_returned(
        client: WorkerClient, agent: RemoteContract, stub: ChatStub, worker_dir: Path) -> None:
    refused = agent.transact("configure", [stub.url, MODEL, "sk-stolen"], signer=BOB)
    assert refused.verified.outcome.reverted and refused.output == {"Err": "NotOwner"}
    config = agent.query("config", signer=BOB).output
    assert config == {"endpoint": stub.url, "model": MODEL, "has_api_key": True}
    # Every message's output, the contract's metadata and its logs: no key anywhere.
    seen: list[Any] = [config, agent.query("owner", signer=BOB).output,
                       agent.query("public_key", signer=BOB).output,
                       agent.query("ask", ["x"], signer=BOB).output,
                       client.contract_info(agent.address), client.logs(agent.address, ALICE)]
    assert API_KEY not in repr(seen) and API_KEY.encode().hex() not in repr(seen)
    # The worker's files hold it only encrypted.
    for path in worker_dir.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_bad_config_is_refused(agent: RemoteContract) -> None:
    for endpoint, model, key in (("ftp://example.com", MODEL, API_KEY), ("http://x", MODEL, ""),
                                 ("http://x", "two words", API_KEY), ("http://x", MODEL, "a\nb")):
        r = agent.transact("configure", [endpoint, model, key], signer=ALICE)
        assert r.output == {"Err": "InvalidConfig"}, (endpoint, model, key)
    assert agent.query("config", signer=BOB).output["has_api_key"] is True  # unchanged


def test_ask_in_a_transaction_and_too_long_prompts(agent: RemoteContract, stub: ChatStub) -> None:
    stub.requests.clear()
    assert agent.transact("ask", ["hello"], signer=BOB).output == {"Err": "QueryOnly"}
    assert agent.query("ask", ["x" * 2049], signer=BOB).output == {"Err": "PromptTooLong"}
    assert stub.requests == []


def test_a_wrong_key_is_the_endpoint_status(client: WorkerClient, stub: ChatStub) -> None:
    wrong = client.deploy(AGENT, "new", [], signer=ALICE, salt=b"wrong-key")
    assert wrong.transact("configure", [stub.url, MODEL, "sk-wrong"], signer=ALICE).success
    assert wrong.query("ask", ["hello"], signer=BOB).output == {"Err": {"HttpStatus": 401}}
    logs = [r["message"] for r in client.logs(wrong.address, ALICE)]
    assert "the chat endpoint answered with an error status" in logs


def test_logs_say_what_happened(client: WorkerClient, agent: RemoteContract) -> None:
    agent.query("ask", ["log me"], signer=BOB)
    messages = [r["message"] for r in client.logs(agent.address, ALICE)]
    assert "configured: endpoint, model and API key set by the owner" in messages
    assert "answered a prompt (signed)" in messages


def test_the_default_egress_policy_keeps_the_request_in(tmp_path: Path, stub: ChatStub) -> None:
    with ServerThread(Worker(WorkerConfig(data_dir=tmp_path / "w", egress=HttpxEgress()))) as url:
        c = WorkerClient(url, policy=development_policy())
        agent = c.deploy(AGENT, "new", [], signer=ALICE)
        assert agent.transact("configure", [stub.url, MODEL, API_KEY], signer=ALICE).success
        stub.requests.clear()
        result = agent.query("ask", ["hello"], signer=BOB).output
        c.close()
    assert "HttpStatus" in result["Err"] and result["Err"]["HttpStatus"] != 200
    assert stub.requests == []
