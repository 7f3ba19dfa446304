"""Attacks on the runner by the code it runs, each with a hostile fixture test.

The PHP side lives in tests/laravel_app/tests/Hostile (suite Hostile, group hostile: never in
the app's default run). The runner runs as an unprivileged user (tests/runner/unprivileged.py),
with recognisable stand-ins for the credentials Lambda and Fargate give it, against the moto
server and, where a test needs one, the real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.runner.secret_forms import SM_ALPHABET, secret_forms
from tests.runner.unprivileged import (
    CANARIES,
    Result,
    UnprivilegedRunner,
    unreadable_for_nobody,
)

pytestmark = pytest.mark.timeout(600)

HOSTILE = ["--testsuite", "Hostile", "--filter"]


@pytest.fixture
def unprivileged(runner_env, moto_server):
    unreadable = unreadable_for_nobody()
    if unreadable:
        pytest.skip(
            f"running as root, and nobody cannot read {', '.join(unreadable)}: clone the "
            "project (and its .venv) where other users may read it, or run the suite as a "
            "non-root user"
        )
    runner = UnprivilegedRunner.create(moto_server, runner_env.bucket)
    yield runner
    _kill_marked(runner.work_root)
    runner.close()


def _uploaded(runner_env) -> dict[str, bytes]:
    return runner_env.everything()


def _assert_nothing_contains(values, result: Result, objects: dict[str, bytes]) -> None:
    response = json.dumps(result.response)
    for value in values:
        for key, body in objects.items():
            assert value.encode() not in body, f"{value!r} reached s3://.../{key}"
        assert value not in response, f"{value!r} reached the response"
        assert value not in result.logs, f"{value!r} reached the runner's logs"


def _output_log(objects: dict[str, bytes]) -> str:
    (log,) = [body for key, body in objects.items() if key.endswith("/output.log")]
    return log.decode(errors="replace")


# --------------------------------------------------------------------------- credentials

MODES = ["lambda", "fargate"]


def _run(unprivileged: UnprivilegedRunner, mode: str, args: list[str], **env: str) -> Result:
    if mode == "lambda":
        return unprivileged.lambda_handler({"command": "test", "args": args}, **env)
    return unprivileged.cli("test", *args, pid_namespace=mode == "fargate-pid1", **env)


@pytest.mark.parametrize("mode", [*MODES, "fargate-pid1"])
def test_the_runner_credentials_are_out_of_reach(runner_env, unprivileged, mode):
    if mode == "fargate-pid1" and os.geteuid() != 0:
        pytest.skip("a PID namespace (the runner as PID 1, as in a Fargate container) needs root")
    result = _run(unprivileged, mode, [*HOSTILE, "CredentialTheftTest"])

    objects = _uploaded(runner_env)
    log = _output_log(objects)
    assert "HOSTILE environ pid=" in log, "the attack did not run: " + log[-2000:]
    assert "HOSTILE own-env" not in log and "HOSTILE stolen" not in log, log
    if mode == "fargate-pid1":
        # The runner is PID 1 of the container: /proc/1/environ is the runner's.
        assert "HOSTILE environ pid=1 denied" in log
    assert result.response["status"] == "passed", result.response
    _assert_nothing_contains(CANARIES.values(), result, objects)


@pytest.mark.parametrize("mode", MODES)
def test_swapped_links_to_the_runner_environment_are_not_followed(
    runner_env, unprivileged, secret_for, mode
):
    # With a database secret, as in production: the report then goes through masking.
    arn = secret_for("a-password-for-the-swap")
    result = _run(unprivileged, mode, [*HOSTILE, "SymlinkSwapTest"], DB_SECRET_ARN=arn)

    objects = _uploaded(runner_env)
    _assert_nothing_contains(CANARIES.values(), result, objects)
    log = _output_log(objects)  # the runner's log, not what the link points at
    assert "HOSTILE symlink junit.xml -> /proc/" in log and " made" in log, log
    assert "HOSTILE symlink output.log -> /proc/" in log, log
    assert not any(key.endswith("/junit.xml") for key in objects), "a link is no report"
    assert "junit.xml" in result.response["output_tail"]  # the runner says why it is missing


# --------------------------------------------------------------------------- processes


def _marked(work_root: Path) -> list[int]:
    marker = f"ltr-hostile-detached:{work_root}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _kill_marked(work_root: Path) -> None:
    for pid in _marked(work_root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("method", "status"),
    [("passes", "passed"), ("fails", "failed"), ("hangs", "timed_out")],
)
def test_detached_descendants_are_gone_when_the_run_ends(runner_env, unprivileged, method, status):
    env = {"RUNNER_DEADLINE_MARGIN_SECONDS": "4", "RUNNER_KILL_GRACE_SECONDS": "1"}
    result = unprivileged.lambda_handler(
        {"command": "test", "args": [*HOSTILE, f"test_detaches_then_{method}"]},
        timeout=15 if method == "hangs" else 120,
        **env,
    )

    assert result.response["status"] == status, result.response
    assert "HOSTILE detached" in _output_log(_uploaded(runner_env))
    assert _marked(unprivileged.work_root) == [], "a detached process outlived the run"


def test_detached_descendants_are_gone_after_a_fargate_run(runner_env, unprivileged):
    result = unprivileged.cli("test", *HOSTILE, "test_detaches_then_passes")

    assert result.response["status"] == "passed", result.logs
    assert _marked(unprivileged.work_root) == [], "a detached process outlived the run"


def test_a_stopped_fargate_task_ends_its_run_and_uploads(runner_env, unprivileged):
    """ECS stops a task with SIGTERM. The runner is the container's PID 1 here (no init
    process: an init would hold the container-credentials URI in a readable environment), and
    PID 1 gets only the signals it handles."""
    if os.geteuid() != 0:
        pytest.skip("a PID namespace (the runner as PID 1, as in a Fargate container) needs root")
    task = unprivileged.start_cli(
        "--timeout", "60", "test", *HOSTILE, "test_detaches_then_hangs", pid_namespace=True
    )
    try:
        lines = []
        for line in task.stdout:
            lines.append(line)
            if "hostile test hanging" in line:
                break
        started = time.monotonic()
        (runner_pid,) = Path(f"/proc/{task.pid}/task/{task.pid}/children").read_text().split()
        os.kill(int(runner_pid), signal.SIGTERM)
        output = "".join(lines) + task.stdout.read()
        task.wait(timeout=30)
    finally:
        task.kill()
        task.wait()
    assert time.monotonic() - started < 15, "SIGTERM did not stop the run"
    response = json.loads(output.strip().splitlines()[-1])
    assert response["status"] == "error" and "SIGTERM" in response["message"], output
    assert task.returncode == 3
    assert "[runner] stopped early" in _output_log(_uploaded(runner_env))
    assert _marked(unprivileged.work_root) == [], "a detached process outlived the run"


def test_work_folders_of_earlier_invocations_are_removed(runner_env, unprivileged):
    stale = unprivileged.work_root / "ltr-run-stale-test-abc123"
    (stale / "app").mkdir(parents=True)
    (stale / "app" / "planted.php").write_text("<?php // waits for a later run")
    other = unprivileged.work_root / "not-the-runners"
    other.mkdir()
    if os.geteuid() == 0:
        shutil.chown(stale, "nobody")
        shutil.chown(stale / "app", "nobody")
        shutil.chown(stale / "app" / "planted.php", "nobody")

    result = unprivileged.lambda_handler({"command": "api:export-markdown"})

    assert result.response["status"] == "passed", result.logs
    assert not stale.exists()
    assert other.is_dir(), "only the runner's own folders go"


# --------------------------------------------------------------------------- secrets


def _each_type_included(password: str) -> bool:
    """What Secrets Manager's generator guarantees (RequireEachIncludedType, the default) and
    RDS's generated passwords have. Without it hypothesis proposes words it mines from the
    runner's own source (`duration`), which then "leak" because the manifest names its fields."""
    return (
        any(c.isdigit() for c in password)
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(not c.isalnum() for c in password)
    )


PASSWORDS = st.text(alphabet=SM_ALPHABET, min_size=8, max_size=32).filter(_each_type_included)


def _summaries(objects: dict[str, bytes]):
    from report_processor.summary import summarize

    (junit,) = [body for key, body in objects.items() if key.endswith("/junit.xml")]
    return summarize([("junit.xml", io.BytesIO(junit))]), junit


@pytest.fixture
def secret_for(runner_env, postgres, monkeypatch):
    """A secret in the emulator with a given password, for the real PostgreSQL's address
    (the runner checks the database is reachable; these tests never log in)."""
    created = []

    def make(password: str, username: str = "test") -> str:
        secret = {
            "engine": "postgres",
            "username": username,
            "password": password,
            "host": postgres.host,
            "port": postgres.port,
            "dbname": "app",
        }
        name = f"ltr/hostile/{uuid.uuid4().hex[:12]}"
        arn = runner_env.secrets.create_secret(Name=name, SecretString=json.dumps(secret))["ARN"]
        created.append(arn)
        return arn

    return make


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(password=PASSWORDS)
@example(password="Sup3r&<>'\"/pw+ %=@x")
@example(password="test&test<test>")
def test_no_form_of_the_password_leaks_into_results_or_the_report(
    runner_env, unprivileged, secret_for, password
):
    for key in runner_env.keys():  # noqa: SIM118 - a method of RunnerSetup, not a dict
        runner_env.s3.delete_object(Bucket=runner_env.bucket, Key=key)
    arn = secret_for(password)
    result = unprivileged.lambda_handler(
        {"command": "test", "args": [*HOSTILE, "test_prints_the_password_in_every_form"]},
        DB_SECRET_ARN=arn,
    )

    assert result.response["status"] == "failed", result.logs
    objects = _uploaded(runner_env)
    assert "HOSTILE form split: [" in _output_log(objects)
    forms = secret_forms(password)
    _assert_nothing_contains(forms.values(), result, objects)
    summary, junit = _summaries(objects)
    # Masking kept the report usable: username `test` did not eat `<testsuites>`.
    ET.fromstring(junit)  # noqa: S314 - the run's own report
    assert summary.report.totals.tests == 1 and summary.report.totals.failed == 1
    for name, form in forms.items():
        assert form not in summary.markdown, f"{name} form in summary.md"
        assert form not in summary.json, f"{name} form in summary.json"


def test_a_failed_connection_trace_shows_no_password(
    runner_env, unprivileged, secret_for, tmp_path
):
    password = "Sup3r-S3cret-Passw0rd-for-the-trace"
    # The image's own PHP settings as PHP ships them (the runner's must win over them).
    image_ini = unprivileged.work_root / "image-php.d"
    image_ini.mkdir()
    (image_ini / "50-image.ini").write_text("zend.exception_ignore_args = Off\n")
    result = unprivileged.lambda_handler(
        {"command": "test", "args": [*HOSTILE, "test_a_failed_connection_trace"]},
        DB_SECRET_ARN=secret_for(password, username="app_user"),
        PHP_INI_SCAN_DIR=f":{image_ini}",
    )

    objects = _uploaded(runner_env)
    log = _output_log(objects)
    assert "HOSTILE trace:" in log and "createPdoConnection(" in log, log
    assert "createPdoConnection()" in log, "the trace still carries the call's arguments"
    # getTraceAsString() shortens string arguments to 15 characters: masking cannot find them.
    _assert_nothing_contains([password[:15]], result, objects)
