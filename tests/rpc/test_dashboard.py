"""The worker dashboard at ``/`` over real HTTP: content, escaping, the deployer sign-in, who
may see logs, and no secret on the page. The browser test is ``test_dashboard_browser.py``."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape

from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.crypto.signer import Signer
from phat_runtime.pink.logs import LogLevel
from phat_runtime.rpc import dashboard_data
from phat_runtime.rpc.server import create_app
from phat_runtime.rpc.signin import sign_in_text, sign_sign_in, verify_sign_in
from phat_runtime.tee.backends import PlatformConfig
from phat_runtime.testing.tee import FakeGramine
from phat_runtime.types import ExecutionMode
from phat_runtime.worker.service import Worker, WorkerConfig

from .conftest import EXAMPLES

FLIPPER = EXAMPLES / "flipper" / "flipper.contract"
TICKER = EXAMPLES / "ticker" / "ticker.contract"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def evil_bundle(tmp_path: Path) -> Path:
    """The ticker bundle renamed to an HTML injection (metadata is uploaded by anyone)."""
    bundle = json.loads(TICKER.read_text())
    bundle["contract"]["name"] = EVIL
    path = tmp_path / "evil.contract"
    path.write_text(json.dumps(bundle))
    return path


@pytest.fixture()
def browser(served) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A cookie-keeping HTTP client on the dashboard (like a browser, without JS)."""
    _, client = served
    with httpx.Client(base_url=client.url, follow_redirects=False) as http:
        yield http


def sign_in(http: httpx.Client, signer: Signer) -> httpx.Response:
    assert http.post("/dashboard/challenge").status_code == 303
    page = http.get("/").text
    text = html.unescape(re.search(r'<pre id="sign-in-text">([^<]+)</pre>', page)[1])  # type: ignore[index]
    signature = sign_sign_in(signer, text)
    return http.post("/dashboard/sign-in", data={"account": to_ss58(signer.public_key),
                                                 "signature": "0x" + signature.hex()})


def test_page_shows_identity_attestation_blocks_and_contracts(served, browser, alice) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    flipper.transact("flip", signer=alice)
    answer = browser.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'none': no script
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
    page = answer.text
    info = worker.info()
    assert to_ss58(worker.identity.public_key) in page and info["identity"] in page
    assert "SIMULATED TEE — development only, NOT SECURE." in page
    assert "Simulated (no hardware)" in page and info["ecdh"] in page
    # The last block and its state root, as /v1/info says, and the blocks before it.
    assert f'<td class="num">{info["block"]}</td>' in page and info["state_root"] in page
    assert page.count('<code class="hex root">') == info["block"] + 1  # genesis .. now, all observed
    # flipper with its code hash and deployer; the system contract is named as such.
    assert ">flipper<" in page and to_ss58(flipper.address) in page
    assert "0x" + (flipper.metadata.code_hash or b"").hex() in page
    assert to_ss58(alice.public_key) in page and "system contract" in page
    assert "Contracts <span class=\"muted\">(2)</span>" in page
    # Load: the transactions counted, the pool shown.
    assert re.search(r"\(3 committed, 0 refused since start\)", page), page  # upload, instantiate, flip
    assert f"of {worker.pool.max_in_flight} running + {worker.pool.backlog} waiting" in page
    # Standalone: said so, and no chain panels (tests/chain/test_chain_dashboard.py has those).
    assert "Mode: standalone" in page and 'id="checkpoints"' not in page and 'id="rejections"' not in page
    owner, system = info["cluster_owner"], info["system_contract"]
    for label, account in (("cluster owner", owner), ("system contract", system)):
        hex_, ss58 = account["address_hex"], account["address"]
        assert f'<dt>{label}</dt><dd><code title="{hex_}">{ss58}</code>' in page
    assert browser.get("/dashboard.css").headers["content-type"].startswith("text/css")


def test_no_secret_on_the_page(served, browser, alice) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    client.deploy(FLIPPER, "new", [True], signer=alice)
    sign_in(browser, alice)
    page = browser.get("/").text.lower()
    secrets = [worker.cluster.services.cluster_secret, worker.identity.ecdh_private_bytes(),
               (worker.config.data_dir / "simulated-seal.key").read_bytes()]
    for secret in secrets:
        assert secret and secret.hex() not in page
    assert browser.cookies["phat_dashboard_session"] not in page


def test_injected_markup_in_names_and_logs_is_escaped(served, browser, alice, tmp_path) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    evil = client.deploy(evil_bundle(tmp_path), "new", [], signer=alice)
    worker.cluster.services.logs.append(evil.address, LogLevel.ERROR, "log " + EVIL, mode=ExecutionMode.QUERY)
    assert sign_in(browser, alice).status_code == 303
    page = browser.get("/").text
    assert "<script" not in page.lower() and "<img" not in page.lower()
    escaped = str(escape(EVIL))  # &lt;script&gt;…
    assert page.count(escaped) == 3  # the contracts table, the logs heading, the log line
    assert "log " + escaped in page
    assert html.unescape(page).count(EVIL) == 3  # shown as the text it is


def test_deployer_sign_in_shows_only_their_logs(served, browser, alice, bob) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    flipper.query("flip", signer=alice, value=1)  # traps: "unpayable" in its logs
    assert "unpayable" not in browser.get("/").text  # not signed in: no logs
    assert 'action="/dashboard/challenge"' in browser.get("/").text
    answer = sign_in(browser, alice)
    assert answer.status_code == 303 and answer.headers["location"] == "/#logs"
    cookie = next(c for c in browser.cookies.jar if c.name == "phat_dashboard_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    assert "samesite=strict" in answer.headers["set-cookie"].lower()
    page = browser.get("/").text
    assert "unpayable" in page and f"Signed in as <code>{to_ss58(alice.public_key)}</code>" in page
    # Bob signs in with his own key: he sees none of alice's logs.
    with httpx.Client(base_url=client.url) as other:
        assert sign_in(other, bob).status_code == 303
        page = other.get("/").text
        assert "unpayable" not in page and "No contract here was deployed by" in page
    # Sign out: the cookie no longer works, even if kept.
    token = browser.cookies["phat_dashboard_session"]
    assert browser.post("/dashboard/sign-out").status_code == 303
    with httpx.Client(base_url=client.url, cookies={"phat_dashboard_session": token}) as kept:
        assert "unpayable" not in kept.get("/").text


def test_sign_in_refuses_forged_reused_and_cross_site_attempts(served, browser, alice, bob) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    client.deploy(FLIPPER, "new", [True], signer=alice)
    # bob signs, but claims to be alice.
    assert browser.post("/dashboard/challenge").status_code == 303
    text = html.unescape(re.search(r'<pre id="sign-in-text">([^<]+)</pre>', browser.get("/").text)[1])  # type: ignore[index]
    assert text.startswith("phat_runtime/dashboard-sign-in/v1:" + "0x" + worker.identity.public_key.hex())
    forged = {"account": to_ss58(alice.public_key), "signature": "0x" + sign_sign_in(bob, text).hex()}
    answer = browser.post("/dashboard/sign-in", data=forged)
    assert answer.status_code == 401 and "does not verify" in answer.text
    # The challenge was consumed by that attempt: alice's right signature over it is refused now.
    right = {"account": to_ss58(alice.public_key), "signature": "0x" + sign_sign_in(alice, text).hex()}
    answer = browser.post("/dashboard/sign-in", data=right)
    assert answer.status_code == 400 and "expired or was already used" in answer.text
    assert "phat_dashboard_session" not in browser.cookies
    # Garbage in the form: a clear error, nothing else.
    browser.post("/dashboard/challenge")
    answer = browser.post("/dashboard/sign-in", data={"account": "nobody", "signature": "zz"})
    assert answer.status_code == 400 and "paste the account" in answer.text
    # A form another site makes the browser post.
    answer = browser.post("/dashboard/challenge", headers={"origin": "http://evil.example"})
    assert answer.status_code == 403 and "from the dashboard itself" in answer.text
    answer = browser.post("/dashboard/sign-in", data=right, headers={"sec-fetch-site": "cross-site"})
    assert answer.status_code == 403
    assert browser.post("/dashboard/sign-in", content=b"x" * 5000).status_code == 413
    # Still alive and unharmed.
    assert browser.get("/health").json()["ok"] is True


def test_signature_is_over_the_wrapped_text_only() -> None:
    alice = Signer.dev("alice")
    text = sign_in_text(b"\x01" * 32, b"\x02" * 16)
    signature = sign_sign_in(alice, text)
    assert verify_sign_in(alice.public_key, text, signature)
    assert not verify_sign_in(alice.public_key, sign_in_text(b"\x01" * 32, b"\x03" * 16), signature)
    ed = Signer.ed25519_from_seed(b"\x07" * 32)
    assert verify_sign_in(ed.public_key, text, sign_sign_in(ed, text))
    with pytest.raises(ValueError, match="not a dashboard sign-in text"):
        sign_sign_in(alice, "phat_runtime/request/v1 anything")


def _asgi_get(worker: Worker, client_ip: str, *paths: str) -> list[httpx.Response]:
    """Requests into the app in-process, as if from ``client_ip`` (no network involved)."""
    app = create_app(worker)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://worker.test") as http:
            return [await (http.post(p) if p.startswith("/dashboard/") else http.get(p)) for p in paths]

    try:
        return asyncio.run(run())
    finally:
        app.close()


def test_logs_only_for_a_browser_on_the_workers_machine(tmp_path: Path) -> None:
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w"))
    try:
        page, challenge = _asgi_get(worker, "192.0.2.7", "/", "/dashboard/challenge")
        assert page.status_code == 200 and "only to a browser on the worker's own machine" in html.unescape(page.text)
        assert 'action="/dashboard/challenge"' not in page.text
        assert challenge.status_code == 403 and "set-cookie" not in challenge.headers
        (local,) = _asgi_get(worker, "127.0.0.1", "/")
        assert 'action="/dashboard/challenge"' in local.text
    finally:
        worker.stop()


def test_hardware_tee_page_shows_claims_and_never_logs(tmp_path: Path) -> None:
    sample = (SAMPLES / "sgx_quote").read_bytes()
    fake = FakeGramine(tmp_path / "dev-attestation", sample)
    config = PlatformConfig(data_dir=tmp_path / "w", gramine_root=fake.root)
    worker = Worker(WorkerConfig(data_dir=tmp_path / "w", platform="gramine-sgx", platform_config=config))
    try:
        page, challenge = _asgi_get(worker, "127.0.0.1", "/", "/dashboard/challenge")
        text = page.text
        assert "SIMULATED TEE" not in text and "gramine-sgx" in text
        assert "mr_enclave" in text and "not verified: the values below are claims" in text
        assert "no collateral given" in text and "FAILED" in text
        assert "never shows logs" in text and challenge.status_code == 403
    finally:
        worker.stop()


def test_page_is_built_on_a_read_thread(served, browser, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    real = dashboard_data.contracts

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args, **kw)

    monkeypatch.setattr(dashboard_data, "contracts", spy)
    assert browser.get("/").status_code == 200
    assert seen and all(name.startswith("phat-read") for name in seen)


def test_a_failing_block_observer_changes_nothing(served, alice, caplog) -> None:  # type: ignore[no-untyped-def]
    worker, client = served

    def broken(_: object) -> None:
        raise RuntimeError("observer bug")

    worker.pipeline.observers.insert(0, broken)
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)  # blocks commit regardless
    assert flipper.query("get", signer=alice).output is True
    assert "a block observer failed" in caplog.text


def test_the_page_without_a_session_is_shared_not_rerendered(served, browser, alice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A client reloading in a loop costs one render per SHARED_PAGE_S, not one per request."""
    from phat_runtime.rpc import dashboard

    renders: list[str] = []
    real = dashboard_data.contracts

    def spy(*args: Any, **kw: Any) -> Any:
        renders.append("deployer" if kw.get("deployer") else "all")
        return real(*args, **kw)

    monkeypatch.setattr(dashboard_data, "contracts", spy)
    monkeypatch.setattr(dashboard, "SHARED_PAGE_S", 3600.0)
    pages = [browser.get("/").text for _ in range(5)]
    assert renders == ["all"] and len(set(pages)) == 1
    # A signed-in page is the deployer's own: rendered each time, never shared.
    sign_in(browser, alice)
    renders.clear()
    for _ in range(2):
        assert "Signed in as" in browser.get("/").text
    assert renders == ["all", "deployer"] * 2
    # Nor is a page with an error shared (the form of another site, refused).
    assert browser.post("/dashboard/challenge", headers={"origin": "http://evil.example"}).status_code == 403
    with httpx.Client(base_url=browser.base_url) as anonymous:
        assert "from the dashboard itself" not in anonymous.get("/").text
    # Once the shared page is old, the next load renders anew.
    monkeypatch.setattr(dashboard, "SHARED_PAGE_S", 0.0)
    renders.clear()
    browser.cookies.clear()
    browser.get("/")
    browser.get("/")
    assert renders == ["all", "all"]
