"""The worker dashboard at ``/``: one server-rendered HTML page, no JavaScript, no CDN.

It shows the worker's identity, platform and attestation verdict (loudly marked when the TEE
is simulated), mode and cluster (and on a chain its status, the checkpoints published there and
the messages this worker rejected), the
last blocks with their state roots, the deployed contracts, query/transaction rates and pool
use, and — to a deployer who signed in (``rpc/signin.py``) — the logs of their contracts.

Safety:

* every value is escaped by the template engine (Jinja2 autoescape): contract names and log
  messages are attacker-controlled; a strict Content-Security-Policy (no script at all)
  backs that up;
* the page is built on a read thread from committed read views: it never blocks the event
  loop, at most two renders run at once, so it cannot starve the API's reads, and the page
  without a session is rendered at most once a second however often it is loaded;
* logs leave the worker in plaintext on this page, unlike ``/v2/logs``, so the page shows
  them only on the simulated platform (the host is trusted there anyway) and only to a
  browser on the worker's own machine (loopback); POSTs from another origin are refused and
  the cookies are ``HttpOnly; SameSite=Strict``;
* nothing secret is shown (public keys, hashes and roots only; no cookie value is rendered).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from phat_runtime.crypto.accounts import parse_account, to_ss58
from phat_runtime.errors import PhatError
from phat_runtime.rpc import dashboard_data as data
from phat_runtime.rpc.bodies import WIRE_VERSION
from phat_runtime.rpc.fastpath import FastPath
from phat_runtime.rpc.signin import DeployerSession, SignIns
from phat_runtime.tee.platform import KIND_SIMULATED
from phat_runtime.worker.error_codes import RpcError

SESSION_COOKIE = "phat_dashboard_session"
CHALLENGE_COOKIE = "phat_dashboard_challenge"
MAX_FORM = 4096
#: Renders at once (each on a read thread); the rest wait on the event loop without a thread.
RENDERS_AT_ONCE = 2
#: How long the page without a session is served again before it is rendered anew (seconds).
SHARED_PAGE_S = 1.0
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chrome send "Origin: null" on POSTs
    "Cache-Control": "no-store",
}


def utc(ms: int | None) -> str:
    if ms is None:
        return "—"
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC"


def short(value: str, keep: int = 10) -> str:
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}…{value[-keep + 2:]}"


class Dashboard:
    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        self.worker = worker = fast.worker
        self.signins = SignIns(worker.identity.public_key)
        self.blocks = data.BlockRing()
        if worker.ready:
            self.blocks.seed(worker.cluster.checkpoint())
        worker.add_block_observer(self.blocks.observe)
        self.meter = data.LoadMeter(fast.metrics)
        self.started_ms = int(time.time() * 1000)
        self._renders: asyncio.Semaphore | None = None
        self._shared: tuple[tuple[str | None, int | None], float, str] | None = None
        self._ticking = False
        self._attestation: tuple[float, dict[str, Any]] | None = None
        env = Environment(loader=PackageLoader("phat_runtime.rpc", "templates"), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(utc=utc, short=short)
        self.template = env.get_template("dashboard.html")
        self.css = resources.files("phat_runtime.rpc").joinpath("static/dashboard.css").read_bytes()

    # --- who may see logs ----------------------------------------------------------------------
    def logs_blocked(self, request: Request) -> str | None:
        """Why this browser may not sign in to read logs here, or None."""
        if self.worker.quote.kind != KIND_SIMULATED:
            return ("On a hardware TEE this page never shows logs: it leaves the enclave as plain HTTP "
                    "through the host the TEE protects them from. Read them end-to-end encrypted with "
                    "`phat logs ADDRESS`.")
        host = request.client.host if request.client else ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return ("Logs are shown only to a browser on the worker's own machine (this page is plain "
                    "HTTP). Tunnel to it (ssh -L 8000:127.0.0.1:8000 HOST) or use `phat logs ADDRESS`.")
        return None

    # --- rendering -----------------------------------------------------------------------------
    async def page(self, request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
        self._start_ticking()
        session = self.signins.session(request.cookies.get(SESSION_COOKIE))
        pending = None if session else self.signins.pending(request.cookies.get(CHALLENGE_COOKIE))
        refresh = request.query_params.get("refresh", "")
        every = min(max(int(refresh), 2), 300) if refresh.isdigit() and len(refresh) <= 4 and not pending else None
        blocked = self.logs_blocked(request)
        # The page everyone sees (no session, challenge or error) is shared for a second, so a
        # client reloading in a loop costs one render a second, not the API's CPU.
        key = (blocked, every) if session is None and pending is None and error is None else None
        if self._renders is None:
            self._renders = asyncio.Semaphore(RENDERS_AT_ONCE)
        async with self._renders:
            cached = self._shared
            if key is not None and cached is not None and cached[0] == key and \
                    time.monotonic() - cached[1] < SHARED_PAGE_S:
                html = cached[2]
            else:
                html = await self.fast.in_thread(self.fast.read_threads, self.render, session, pending,
                                                 blocked, error, every)
                if key is not None:
                    self._shared = (key, time.monotonic(), html)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def render(self, session: DeployerSession | None, pending: str | None, blocked: str | None,
               error: str | None, refresh: int | None) -> str:
        worker, fast = self.worker, self.fast
        info = worker.info()
        rows, total = data.contracts(worker)
        on_chain, chain_error = None, None
        try:
            on_chain = data.chain_records(worker)
        except PhatError as exc:  # the journal unreadable: say so, show the rest
            chain_error = str(exc)
        logs = data.deployer_logs(worker, session.account) if session is not None and blocked is None else None
        return self.template.render(
            info=info, wire_version=WIRE_VERSION, identity_ss58=to_ss58(worker.identity.public_key),
            started_ms=self.started_ms, now_ms=int(time.time() * 1000), refresh=refresh,
            attestation=self._verdict(), blocks=self.blocks.recent(), contracts=rows, contracts_total=total,
            chain=info.get("chain"), on_chain=on_chain, chain_error=chain_error,
            load=self.meter.snapshot(), pool=worker.pool, tx_waiting=fast.tx_admitted, limits=fast.limits,
            sessions=len(fast.sessions),
            signed_in=None if session is None else {
                "account": to_ss58(session.account), "minutes_left": session.seconds_left(time.monotonic()) // 60 + 1},
            pending=pending, blocked=blocked, logs=logs, error=error,
        )

    def _verdict(self) -> dict[str, Any]:
        """The attestation panel, re-verified at most once a minute (the quote never changes)."""
        now = time.monotonic()
        if self._attestation is None or now - self._attestation[0] > 60:
            self._attestation = (now, data.attestation(self.worker))
        return self._attestation[1]

    def _start_ticking(self) -> None:
        if self._ticking:
            return
        self._ticking = True
        loop = asyncio.get_running_loop()

        def tick() -> None:  # on the event loop: reads counters only
            self.meter.sample()
            loop.call_later(5.0, tick)

        tick()

    # --- sign-in -------------------------------------------------------------------------------
    async def challenge(self, request: Request) -> Response:
        refusal = self._refuse_post(request)
        if refusal is not None:
            return await self.page(request, error=str(refusal), status=refusal.status)
        response = RedirectResponse("/#logs", status_code=303, headers=HEADERS)
        _cookie(request, response, CHALLENGE_COOKIE, self.signins.new_challenge(), 300)
        return response

    async def sign_in(self, request: Request) -> Response:
        try:
            refusal = self._refuse_post(request)
            if refusal is not None:
                raise refusal
            form = await _form(request)
            try:
                account = parse_account(form.get("account", "").strip())
                signature = bytes.fromhex(form.get("signature", "").strip().removeprefix("0x"))
            except (ValueError, PhatError):
                raise RpcError("bad_request", "paste the account (SS58 or 0x-hex) and the 0x-hex signature "
                               "that `phat keys sign-in` printed") from None
            token = self.signins.complete(request.cookies.get(CHALLENGE_COOKIE), bytes(account), signature)
        except RpcError as exc:
            return await self.page(request, error=str(exc), status=exc.status)
        response = RedirectResponse("/#logs", status_code=303, headers=HEADERS)
        _cookie(request, response, SESSION_COOKIE, token, 900)
        response.delete_cookie(CHALLENGE_COOKIE, path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        refusal = _cross_origin(request)
        if refusal is not None:
            return await self.page(request, error=str(refusal), status=refusal.status)
        self.signins.sign_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/", status_code=303, headers=HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _refuse_post(self, request: Request) -> RpcError | None:
        blocked = self.logs_blocked(request)
        if blocked is not None:
            return RpcError("forbidden", blocked)
        return _cross_origin(request)


def _cross_origin(request: Request) -> RpcError | None:
    """A POST that a page of another site made the browser send."""
    origin = request.headers.get("origin")
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if (origin is not None and origin != expected) or request.headers.get("sec-fetch-site") not in (
            None, "same-origin", "none"):
        return RpcError("forbidden", "a dashboard form must be sent from the dashboard itself")
    return None


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise RpcError("body_too_large", f"a sign-in form is at most {MAX_FORM} bytes")
    try:
        fields = parse_qs(body.decode(), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise RpcError("bad_request", "the form is not application/x-www-form-urlencoded text") from None
    return {name: values[0] for name, values in fields.items()}


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def mount_dashboard(app: FastAPI, fast: FastPath) -> Dashboard:
    """Serve the dashboard at ``/`` of the worker's API (``rpc/server.py``)."""
    board = Dashboard(fast)

    async def css(_: Request) -> Response:
        return Response(board.css, media_type="text/css", headers={**HEADERS, "Cache-Control": "max-age=300"})

    async def index(request: Request) -> Response:
        return await board.page(request)

    async def no_icon(_: Request) -> Response:
        return Response(status_code=204)

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/favicon.ico", no_icon, methods=["GET"], include_in_schema=False)
    app.add_api_route("/dashboard.css", css, methods=["GET"], include_in_schema=False)
    app.add_api_route("/dashboard/challenge", board.challenge, methods=["POST"], include_in_schema=False)
    app.add_api_route("/dashboard/sign-in", board.sign_in, methods=["POST"], include_in_schema=False)
    app.add_api_route("/dashboard/sign-out", board.sign_out, methods=["POST"], include_in_schema=False)
    return board
