"""Sharded runs in the emulator: moto executes the state machine, the handlers run in-process.

moto interprets the deployed Amazon States Language definition itself (Map, Retry, Catch, the
context object) once its execution mode is on. What it cannot do is run a container Lambda, so
its interpreter's Lambda Invoke calls (sent to localhost:$MOTO_PORT) are pointed at
`LambdaStandIn`, a local HTTP endpoint that runs the invoked function's handler in this process
(as demo/lambda_runtime.py does for EventBridge and S3 deliveries) and forwards every other
request to moto unchanged. A handler's exception becomes a Lambda function error
(`X-Amz-Function-Error: Unhandled`), as Lambda reports it; `ServiceUnavailable` becomes the
Lambda service's own 500 `ServiceException`, the error the state machine retries.

`PlayedRunner` plays the runner's two sharding events (plan, shard) until the runner handles
them itself (issue 13, runner side): the plan is packed from a recorded real unsharded run of
the same suite (its classes, test counts and times), and each shard runs the real runner handler
on the real app with a `--filter` for its classes, uploading (masked, as the runner does) to a
scratch bucket, from which the shard's files are moved under the shard's prefix. Everything
else, including the merge function, is the real deployed handler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 (our own runner's PHPUnit output, not untrusted)
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote

from runner.layout import JUNIT, MANIFEST, OUTPUT_LOG, RunLocation

from demo.lambda_runtime import (
    DeployedFunction,
    LocalRunnerSettings,
    invoke_report_processor,
    invoke_runner,
)
from demo.services import LOOPBACK, MotoServer, free_port
from modules.contract import RESULTS_BUCKET

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
    """The deployed runner's handler for every event, sharding events included: what replaces
    PlayedRunner once the runner handles plan and shard events itself."""
    settings = local or LocalRunnerSettings()

    def invoke(event: dict) -> Any:
        return invoke_runner(emulator, function, event, settings, log)

    return invoke


# --------------------------------------------------------------------------- the played runner


@dataclass(frozen=True)
class RecordedClass:
    name: str  # PHPUnit's class name, backslashes and all
    file: str
    tests: int
    seconds: float


def record_suite(junit_path: Path) -> tuple[RecordedClass, ...]:
    """The classes of a real unsharded run's JUnit report (PHPUnit 9: class suites carry
    `file`), with their test counts and times."""
    root = ET.parse(junit_path).getroot()  # noqa: S314 (our own PHPUnit's output)
    classes = []
    for suite in root.iter("testsuite"):
        if suite.get("file") and "::" not in (suite.get("name") or ""):
            classes.append(
                RecordedClass(
                    suite.get("name") or "",
                    suite.get("file") or "",
                    int(suite.get("tests") or 0),
                    float(suite.get("time") or 0.0),
                )
            )
    return tuple(classes)


def pack_longest_first(
    classes: tuple[RecordedClass, ...], shards: int
) -> list[list[RecordedClass]]:
    """Classes into `shards` bins, longest first, each to the least loaded bin."""
    bins: list[list[RecordedClass]] = [[] for _ in range(max(1, min(shards, len(classes))))]
    for item in sorted(classes, key=lambda c: (-c.seconds, c.name)):
        min(bins, key=lambda b: (sum(c.seconds for c in b), len(b))).append(item)
    return bins


def class_filter(classes: list[RecordedClass]) -> str:
    """A PHPUnit --filter selecting exactly these classes' tests."""
    names = "|".join(re.escape(c.name).replace("\\\\", "\\\\") for c in classes)
    return f"^(?:{names})::"


@dataclass
class PlayedRunner:
    """The runner's plan and shard events, played (see the module docstring); any other event
    goes to the real runner handler unchanged."""

    emulator: MotoServer
    function: DeployedFunction
    bucket: str
    suite: tuple[RecordedClass, ...]
    local: LocalRunnerSettings = field(default_factory=LocalRunnerSettings)
    log: TextIO | None = None
    # Shards that are killed: their invocation ends as Lambda's timeout does, nothing uploaded.
    kill: frozenset[int] = frozenset()

    def __call__(self, event: dict) -> Any:
        if event.get("action") == "plan":
            return self.plan(event)
        if isinstance(event.get("shard"), dict):
            return self.shard(event)
        return invoke_runner(self.emulator, self.function, event, self.local, self.log)

    def plan(self, event: dict) -> dict:
        started = datetime.now(UTC)
        run_id, command = str(event["run_id"]), str(event["command"])
        location = RunLocation.of(started, run_id, command)
        bins = pack_longest_first(self.suite, int(event["shards"]))
        shards: list[dict[str, Any]] = [
            {
                "index": index,
                "estimated_seconds": round(sum(c.seconds for c in classes), 3),
                "classes": [
                    {
                        "name": c.name,
                        "file": c.file,
                        "tests": c.tests,
                        "estimated_seconds": c.seconds,
                    }
                    for c in classes
                ],
            }
            for index, classes in enumerate(bins)
        ]
        plan = {
            "version": 1,
            "run_id": run_id,
            "command": command,
            "slug": location.slug,
            "started_at": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "shard_count": len(shards),
            "tests_total": sum(c.tests for c in self.suite),
            "classes_without_history": 0,
            "shards": shards,
        }
        plan_key = location.run_prefix + "plan.json"
        self._s3().put_object(Bucket=self.bucket, Key=plan_key, Body=json.dumps(plan).encode())
        return {
            "status": "planned",
            "run_id": run_id,
            "plan_key": plan_key,
            "shard_count": len(shards),
            "shards": [
                {
                    "index": index,
                    "classes": len(classes),
                    "tests": sum(c.tests for c in classes),
                    "estimated_seconds": round(sum(c.seconds for c in classes), 3),
                }
                for index, classes in enumerate(bins)
            ],
            "tests_total": plan["tests_total"],
            "cap": {"requested": event["shards"], "applied": len(shards), "reason": "played"},
        }

    def shard(self, event: dict) -> dict:
        shard = event["shard"]
        index, plan_key = int(shard["index"]), str(shard["plan_key"])
        if f"/{event['run_id']}/" not in plan_key or not plan_key.endswith("/plan.json"):
            raise ValueError(f"plan_key {plan_key!r} is not the plan of run {event['run_id']!r}")
        plan = json.loads(self._s3().get_object(Bucket=self.bucket, Key=plan_key)["Body"].read())
        if index in self.kill:
            raise FunctionError("Sandbox.Timedout", "Task timed out (the shard was killed)")
        classes = [
            RecordedClass(c["name"], c["file"], c["tests"], c["estimated_seconds"])
            for c in plan["shards"][index]["classes"]
        ]
        # The real runner, on the real app, uploading (masked, as it always does) to a scratch
        # bucket without notifications; its files are then moved where the sharded runner will
        # put them. (Its local files would be the unmasked originals: never those.)
        scratch = self._scratch_bucket()
        response = invoke_runner(
            self.emulator,
            dataclasses.replace(
                self.function, environment={**self.function.environment, RESULTS_BUCKET: scratch}
            ),
            {"command": event["command"], "args": ["--filter", class_filter(classes)],
             "run_id": event["run_id"]},
            self.local,
            self.log,
        )  # fmt: skip
        uploaded = str(response.get("results_uri") or "").removeprefix(f"s3://{scratch}/")
        prefix = plan_key.removesuffix("plan.json") + f"shards/{index:03d}/"
        s3 = self._s3()
        for name in (OUTPUT_LOG, MANIFEST, JUNIT):  # junit.xml last, as the runner uploads
            with contextlib.suppress(s3.exceptions.NoSuchKey):
                body = s3.get_object(Bucket=scratch, Key=uploaded + name)["Body"].read()
                s3.put_object(Bucket=self.bucket, Key=prefix + name, Body=body)
                # The next shard of the run reuses the run id: the runner refuses an id whose
                # manifest exists.
                s3.delete_object(Bucket=scratch, Key=uploaded + name)
        response["results_uri"] = f"s3://{self.bucket}/{prefix}"
        return {**response, "shard": {"index": index, "count": int(shard["count"])}}

    def _scratch_bucket(self) -> str:
        name = f"{self.bucket[:48]}-shard-scratch"
        s3 = self._s3()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            where = (
                {}
                if self.emulator.region == "us-east-1"
                else {"CreateBucketConfiguration": {"LocationConstraint": self.emulator.region}}
            )
            s3.create_bucket(Bucket=name, **where)
        return name

    def _s3(self):
        return self.emulator.client("s3")


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
