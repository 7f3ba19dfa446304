"""Stand-ins for the Lambda runtime: the context object, the function's environment, a cold
start, and an in-process invocation of a deployed function's handler.

moto stores the functions Terraform applied but cannot run a container Lambda (no Docker here),
so the demo and the tests run each handler in this process, exactly as deployed: the handler
named by the emulator's function configuration, with that function's environment, memory and
timeout (a real deadline), imported fresh as in a new execution environment.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from demo.services import MotoServer
from modules.contract import REPORT_APP_ROOT, RUNNER_IMAGE_HANDLER

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_APP = REPO_ROOT / "tests" / "laravel_app"
# The report processor's counterpart of RUNNER_APP_DIR: the app is the fixture, not the image's
# /var/task/app, so paths in summaries and test ids in the history are relative to it, as they
# are to the image's app directory by default.
REPORT_PROCESSOR_OVERRIDES = {
    REPORT_APP_ROOT: str(FIXTURE_APP),
    "HISTORY_APP_ROOTS": str(FIXTURE_APP),
}
RUNNER_SOURCE = REPO_ROOT / "runner_image"
ACCOUNT_ID = "123456789012"  # moto's default account, the one in config/example.json

# --------------------------------------------------------------------------- Lambda execution


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers use, with a real deadline."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass(frozen=True)
class DeployedFunction:
    """A function as the emulator describes it after `terraform apply`."""

    name: str
    arn: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    package_type: str
    handler: str  # "module.function", from Handler (zip) or the image's command override

    def handler_module(self) -> str:
        module, _, function = self.handler.rpartition(".")
        if not module or function != "handler":
            raise RuntimeError(
                f"{self.name}: deployed handler {self.handler!r} is not module.handler"
            )
        return module


def describe_function(lambda_client, name: str) -> DeployedFunction:
    config = lambda_client.get_function_configuration(FunctionName=name)
    return DeployedFunction(
        name=config["FunctionName"],
        arn=config["FunctionArn"],
        environment=dict(config.get("Environment", {}).get("Variables", {})),
        timeout_seconds=int(config.get("Timeout", 3)),
        memory_mb=int(config.get("MemorySize", 128)),
        package_type=config.get("PackageType", "Zip"),
        handler=_deployed_handler(config),
    )


def _deployed_handler(config: Mapping[str, Any]) -> str:
    if config.get("PackageType") == "Image":
        command = config.get("ImageConfigResponse", {}).get("ImageConfig", {}).get("Command")
        # Without an override the image's own CMD names the handler.
        return command[0] if command else RUNNER_IMAGE_HANDLER
    return config.get("Handler", "")


@contextlib.contextmanager
def lambda_environment(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ as inside the function, restored afterwards whatever happened."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def cold_start(module: str, search_path: Path | None = None) -> Iterator[Any]:
    """Import `module` as a new execution environment would, without any copy an earlier
    "deployment" in this process imported (with its cached clients, secrets and settings), and
    put the previous modules back afterwards so other code in this process is not affected."""
    package = module.split(".")[0]
    previous = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == package or name.startswith(package + ".")
    }
    added_path = search_path is not None and str(search_path) not in sys.path
    if added_path:
        sys.path.insert(0, str(search_path))
    try:
        yield importlib.import_module(module)
    finally:
        for name in list(sys.modules):
            if name == package or name.startswith(package + "."):
                del sys.modules[name]
        sys.modules.update(previous)
        if added_path:
            sys.path.remove(str(search_path))


def function_env(function: DeployedFunction, emulator: MotoServer) -> dict:
    """What Lambda puts in the environment, then the function's own variables, then only what
    must point at this machine."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 (Lambda's HOME is not writable either)
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),  # noqa: S108
        "AWS_REGION": emulator.region,
        "AWS_DEFAULT_REGION": emulator.region,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        **function.environment,
        **emulator.env,
    }


@dataclass(frozen=True)
class LocalRunnerSettings:
    """The only runner settings that differ from the deployed function: where the app and PHP
    are on this machine instead of in the image."""

    app_dir: Path = FIXTURE_APP
    php: str = field(default_factory=lambda: shutil.which("php") or "php")
    # What a run of the demo's story changes (demo/history_story.py): the app version a new
    # image would carry, and the fixture app's outcome switches.
    env: Mapping[str, str] = field(default_factory=dict)

    def overrides(self) -> dict[str, str]:
        return {"RUNNER_APP_DIR": str(self.app_dir), "RUNNER_PHP": self.php, **self.env}


@contextlib.contextmanager
def function_log(stream: TextIO | None) -> Iterator[None]:
    """Where a handler's stdout/stderr go (Lambda would ship them to CloudWatch Logs): left
    alone when `stream` is None (pytest captures them), else into that file."""
    if stream is None:
        yield
        return
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield
    stream.flush()


def invoke_runner(
    emulator: MotoServer,
    function: DeployedFunction,
    event: Mapping[str, Any],
    local: LocalRunnerSettings,
    log: TextIO | None = None,
) -> dict:
    """`runner.handler.handler(event, context)` in-process, as the deployed function."""
    region = emulator.region
    env = {**function_env(function, emulator), **local.overrides()}
    with (
        lambda_environment(env),
        function_log(log),
        cold_start(function.handler_module(), RUNNER_SOURCE) as handler_module,
    ):
        context = LambdaContext(function.name, function.memory_mb, function.timeout_seconds, region)
        return handler_module.handler(json.loads(json.dumps(event)), context)


def invoke_report_processor(
    emulator: MotoServer, function: DeployedFunction, event: dict, log: TextIO | None = None
) -> tuple[Any, str]:
    """The report processor in-process; returns its response and everything it printed (the
    EMF records go to stdout, which Lambda ships to CloudWatch Logs)."""
    captured = io.StringIO()
    region = emulator.region
    try:
        with (
            lambda_environment({**function_env(function, emulator), **REPORT_PROCESSOR_OVERRIDES}),
            function_log(log),
            contextlib.redirect_stdout(captured),
            cold_start(function.handler_module()) as handler_module,
        ):
            context = LambdaContext(
                function.name, function.memory_mb, function.timeout_seconds, region
            )
            response = handler_module.handler(event, context)
    finally:
        if log is not None:
            log.write(captured.getvalue())
    return response, captured.getvalue()
