"""Sharded runs in the emulator: moto executes the state machine, the handlers run in-process.

moto interprets the deployed Amazon States Language definition itself (Map, Retry, Catch, the
context object) once its execution mode is on. What it cannot do is run a container Lambda, so
its interpreter's Lambda Invoke calls (sent to localhost:$MOTO_PORT) are pointed at
`LambdaStandIn`, a local HTTP endpoint that runs the invoked function's handler in this process
(as demo/lambda_runtime.py does for EventBridge and S3 deliveries) and forwards every other
request to moto unchanged. A handler's exception becomes a Lambda function error
(`X-Amz-Function-Error: Unhandled`), as Lambda reports it; `ServiceUnavailable` becomes the
Lambda service's own 500 `ServiceException`, the error the state machine retries.

The runner function is the deployed runner handler for every event, the plan and each shard
included (`runner_invoker`), and the merge function is the deployed merge handler
(`merge_invoker`). What stays played is the Lambda service itself: one invocation at a time,
in this process, and the errors a test makes it report.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import unquote

from demo.lambda_runtime import (
    DeployedFunction,
    LocalRunnerSettings,
    invoke_report_processor,
    invoke_runner,
)
from demo.services import LOOPBACK, MotoServer, free_port

Invoker = Callable[[dict], Any]
# Step Functions calls the AWS provider makes that moto 5.2.5 lacks, and their answers here:
# the definition is valid (moto's interpreter parses it when it executes it), and the machine
# has no published versions (the stack publishes none).
_NOT_IN_MOTO = {
    "AWSStepFunctions.ValidateStateMachineDefinition": b'{"result": "OK", "diagnostics": []}',
    "AWSStepFunctions.ListStateMachineVersions": b'{"stateMachineVersions": []}',
}
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations$")


class FunctionError(Exception):
    """The function failed (crashed, timed out): Lambda answers 200 with X-Amz-Function-Error."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


class ServiceUnavailable(Exception):
    """The Lambda service itself failed the Invoke call (HTTP 500 ServiceException)."""


def execution_mode(emulator: MotoServer) -> None:
    """Switch on moto's Step Functions interpreter. Lambda's backend is left alone (choosing the
    Docker-free one would hide the functions already deployed): the state machine's Invoke
    calls never reach it, they go to the LambdaStandIn."""
    request = urllib.request.Request(
        f"{emulator.endpoint_url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local emulator)
        response.read()


# --------------------------------------------------------------------------- Lambda stand-in


@dataclass
class Invocation:
    function: str
    payload: Any
    outcome: str  # "ok", the function error type, or "ServiceException"
    seconds: float


class LambdaStandIn:
    """The endpoint moto's Step Functions interpreter invokes Lambda through."""

    def __init__(self) -> None:
        self.port = free_port()
        self.functions: dict[str, Invoker] = {}
        self.invocations: list[Invocation] = []
        self.forward_url: str | None = None
        # One invocation at a time: handlers run in this process and swap os.environ.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off invocations while this process runs another handler (S3 deliveries): both
        swap os.environ and the imported handler modules."""
        with self._lock:
            yield

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def register(self, function_name: str, invoker: Invoker) -> None:
        self.functions[function_name] = invoker

    @contextlib.contextmanager
    def serving(self, emulator: MotoServer) -> Iterator[LambdaStandIn]:
        self.forward_url = emulator.endpoint_url
        server = ThreadingHTTPServer((LOOPBACK, self.port), _handler_for(self))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    def invoke(self, function: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        invoker = self.functions[function]
        payload = json.loads(body or b"{}")
        with self._lock:
            started = time.monotonic()  # the handler's own time, not the wait for the lock
            try:
                result = invoker(payload)
            except ServiceUnavailable as error:
                self._record(function, payload, "ServiceException", started)
                return (
                    500,
                    {"x-amzn-ErrorType": "ServiceException"},
                    json.dumps({"Type": "Service", "message": str(error)}).encode(),
                )
            except FunctionError as error:
                self._record(function, payload, error.error_type, started)
                return _function_error(error.error_type, str(error))
            except Exception as error:  # noqa: BLE001 (a handler crash is a function error)
                self._record(function, payload, type(error).__name__, started)
                return _function_error(type(error).__name__, str(error))
        self._record(function, payload, "ok", started)
        return 200, {"X-Amz-Executed-Version": "$LATEST"}, json.dumps(result).encode()

    def _record(self, function: str, payload: Any, outcome: str, started: float) -> None:
        self.invocations.append(Invocation(function, payload, outcome, time.monotonic() - started))


def _function_error(error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {"errorType": error_type, "errorMessage": message[:1000]}
    return 200, {"X-Amz-Function-Error": "Unhandled"}, json.dumps(body).encode()


def _function_name(path_part: str) -> str:
    """A function name from a name, a full ARN or a qualified ARN."""
    text = unquote(path_part)
    if ":function:" in text:
        text = text.split(":function:", 1)[1]
    return text.split(":", 1)[0]


def _handler_for(stand_in: LambdaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            if "x-amzn-RequestId" not in headers:
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, body: bytes | None) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            request = urllib.request.Request(
                f"{stand_in.forward_url}{self.path}", data=body, headers=headers,
                method=self.command,
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                    self._answer(response.status, dict(response.headers), response.read())
            except urllib.error.HTTPError as error:
                self._answer(error.code, dict(error.headers), error.read())

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self._body()
            missing = _NOT_IN_MOTO.get(self.headers.get("X-Amz-Target") or "")
            if missing is not None:
                self._answer(200, {"Content-Type": "application/x-amz-json-1.0"}, missing)
                return
            match = _INVOKE_PATH.match(self.path.split("?", 1)[0])
            name = _function_name(match["function"]) if match else None
            if name in stand_in.functions:
                self._answer(*stand_in.invoke(name, body))
            else:
                self._forward(body)

        def do_GET(self) -> None:  # noqa: N802
            self._forward(None)

    return Handler


# --------------------------------------------------------------------------- the real handlers


def merge_invoker(
    emulator: MotoServer, function: DeployedFunction, printed: list[str], log: TextIO | None = None
) -> Invoker:
    """The deployed merge function's handler (from the report processor's zip), in-process;
    what it prints (its EMF line with ShardMakespanSeconds) is appended to `printed`."""

    def invoke(event: dict) -> Any:
        response, output = invoke_report_processor(emulator, function, event, log)
        printed.append(output)
        return response

    return invoke


def runner_invoker(
    emulator: MotoServer,
    function: DeployedFunction,
    local: LocalRunnerSettings | None = None,
    log: TextIO | None = None,
) -> Invoker:
    """The deployed runner's handler for every event, the sharding events (plan, shard)
    included."""
    settings = local or LocalRunnerSettings()

    def invoke(event: dict) -> Any:
        return invoke_runner(emulator, function, event, settings, log)

    return invoke


# --------------------------------------------------------------------------- an execution


@dataclass(frozen=True)
class Execution:
    arn: str
    status: str
    output: Any
    seconds: float
    history: list[dict]

    def failures(self) -> list[str]:
        """What failed, from the history: for an assertion message or the demo's output."""
        return [
            f"{event['type']}: {json.dumps(details, default=str)[:600]}"
            for event in self.history
            for name, details in event.items()
            if name.endswith("FailedEventDetails")
        ]

    def states_entered(self) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history
            if "stateEnteredEventDetails" in event
        ]


def run_execution(
    emulator: MotoServer,
    state_machine_arn: str,
    name: str,
    execution_input: dict,
    timeout: float = 600,
) -> Execution:
    """Start one execution and wait for its end (moto runs it in a thread of its own)."""
    sfn = emulator.client("stepfunctions")
    started = time.monotonic()
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    while True:
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"execution {name} still running after {timeout:.0f}s")
        time.sleep(0.2)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    output = description.get("output")
    return Execution(
        arn,
        description["status"],
        json.loads(output) if output else None,
        time.monotonic() - started,
        history,
    )
