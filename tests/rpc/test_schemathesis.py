"""Property-based run of schemathesis against the worker's own OpenAPI schema (bounded):
whatever it sends, the worker answers without a 5xx and keeps serving."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from phat_runtime.rpc.server import create_app
from phat_runtime.worker.service import Worker, WorkerConfig

# One worker for the module (simulated TEE: development only).
_TMP = tempfile.TemporaryDirectory(prefix="phat-schemathesis-")
WORKER = Worker(WorkerConfig(data_dir=Path(_TMP.name) / "worker"))
WORKER.start()
APP = create_app(WORKER)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])


def teardown_module() -> None:
    WORKER.stop()
    _TMP.cleanup()
