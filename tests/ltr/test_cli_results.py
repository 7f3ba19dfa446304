"""`ltr` against the emulator, reading results the real runner and the real report processor
produced (in-process, as in `make demo`: moto cannot run a container Lambda here)."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from demo.delivery import NotificationDelivery
from demo.lambda_runtime import LocalRunnerSettings, describe_function, invoke_runner
from demo.pipeline import read_text, store_database_secret
from ltr.core import format_pass_rate
from modules.config import load_config
from tests.ltr.helpers import REPO_ROOT, run_ltr

COMMANDS = ("test", "scribe:generate", "api:export-markdown")


class Results:
    def __init__(self, stack):
        self.stack = stack
        self.emulator = stack.emulator
        self.responses: dict[str, dict] = {}

    def run(self, event: dict) -> dict:
        """One runner invocation plus the S3 notifications it causes, as AWS would."""
        notifications = NotificationDelivery(self.emulator, self.stack.bucket)
        function = describe_function(self.emulator.client("lambda"), self.stack.runner_function)
        response = invoke_runner(self.emulator, function, event, LocalRunnerSettings())
        deliveries = notifications.deliver()
        assert all(d.error is None for d in deliveries), deliveries
        return response

    def text(self, key: str) -> str:
        return read_text(self.emulator, self.stack.bucket, key)


@pytest.fixture(scope="module")
def results(ltr_stack, postgres):
    config = load_config(ltr_stack.config_path)
    credentials = postgres.create_database("ltr_cli")
    store_database_secret(
        ltr_stack.emulator, config.database.secret_arn, credentials.as_secret_json()
    )
    produced = Results(ltr_stack)
    for command in COMMANDS:
        produced.responses[command] = produced.run({"command": command, "args": []})
    return produced


def run_path(response: dict, bucket: str) -> str:
    return response["results_uri"].removeprefix(f"s3://{bucket}/").removeprefix("runs/")


# --------------------------------------------------------------------------- runs / report / docs


def test_runs_lists_every_run_with_status_and_pass_rate(aws_env, results):
    code, out, err = run_ltr("runs")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "COMMAND"]
    rows = {line.split()[1]: line.split() for line in lines[2:]}
    assert set(rows) >= set(COMMANDS)
    test_response = results.responses["test"]
    summary = json.loads(
        results.text(f"reports/{run_path(test_response, results.stack.bucket)}summary.json")
    )
    row = rows["test"]
    assert row[0] == test_response["run_id"]
    assert row[2] == test_response["status"] == "failed"
    assert row[3] == format_pass_rate(summary["pass_rate"])
    totals = summary["totals"]
    assert row[4] == f"{totals['passed']}/{totals['tests'] - totals['skipped']}"
    assert rows["scribe:generate"][3] == "-"  # no JUnit, no pass rate


def test_runs_limit(aws_env, results):
    code, out, _ = run_ltr("runs", "--limit", "1")
    assert code == 0
    assert len(out.splitlines()) == 3


def test_report_prints_the_stored_summary(aws_env, results):
    response = results.responses["test"]
    prefix = f"reports/{run_path(response, results.stack.bucket)}"
    code, out, err = run_ltr("report", response["run_id"])
    assert code == 0, err
    assert out == results.text(prefix + "summary.md").rstrip("\n") + "\n"
    code, out, _ = run_ltr("report", response["run_id"], "--format", "json")
    assert code == 0
    assert json.loads(out) == json.loads(results.text(prefix + "summary.json"))
    code, out, _ = run_ltr("report", "latest")
    assert code == 0 and "test_a_failing_assertion" in out


def test_report_of_a_run_without_tests_says_so(aws_env, results):
    response = results.responses["scribe:generate"]
    code, _, err = run_ltr("report", response["run_id"])
    assert code == 2
    assert err.count("\n") == 1
    assert f"run {response['run_id']} has no test summary" in err
    assert "scribe:generate: passed" in err


def test_docs_lists_uris_and_a_working_presigned_link(aws_env, results):
    code, out, err = run_ltr("docs", "--expires", "600")
    assert code == 0, err
    bucket = results.stack.bucket
    for slug in ("scribe-generate", "api-export-markdown"):
        assert f"{slug}: s3://{bucket}/docs/latest/{slug}/" in out
    links = re.findall(r"link \(valid 600s\): (\S+)", out)
    opens = re.findall(r"open: s3://[^/]+/(\S+)", out)
    assert len(links) == len(opens) == 2
    with urllib.request.urlopen(links[0], timeout=10) as response:  # noqa: S310 (loopback)
        assert response.read().decode() == results.text(opens[0])


# --------------------------------------------------------------------------- run --wait


def start_ltr(aws_env, stdout, *argv: str) -> tuple[subprocess.Popen, queue.Queue]:
    script = Path(sys.executable).parent / "ltr"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ltr"]
    process = subprocess.Popen(
        [*command, *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **aws_env},
        cwd=REPO_ROOT,
    )
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def accepted_run_id(lines: queue.Queue) -> str:
    seen = []
    while True:
        line = lines.get(timeout=60)
        assert line is not None, f"ltr ended before starting a run: {seen}"
        seen.append(line)
        match = re.match(r"started run (\S+): .* \(accepted, HTTP 202\)$", line.strip())
        if match:
            return match.group(1)


def drain(lines: queue.Queue) -> str:
    collected = []
    while (line := lines.get(timeout=60)) is not None:
        collected.append(line)
    return "".join(collected)


@pytest.mark.parametrize(
    ("args", "expected_exit", "outcome"),
    [
        (
            (),
            1,
            "test: failed, exit code",
        ),  # the fixture fails and errors on purpose
        (("--filter", "SlugTest"), 0, "test: passed, exit code 0, "),
        # PHPUnit exits 0 when the filter matches nothing; the report says no tests ran, and
        # that is not a pass (issue 9).
        (
            ("--filter", "NoSuchTestAnywhere"),
            1,
            "test: passed, exit code 0, report no_tests, 0 passed",
        ),
    ],
)
def test_run_wait_follows_the_run_to_its_summary(
    aws_env, results, args, expected_exit, outcome, tmp_path
):
    stdout = (tmp_path / "stdout").open("w+")
    process, lines = start_ltr(aws_env, stdout, "run", "test", *args, "--wait", "--timeout", "240")
    try:
        run_id = accepted_run_id(lines)
        # The emulator accepted the asynchronous invocation; it cannot run the image, so the
        # runner runs here with the event ltr sent, and its uploads notify the report processor.
        response = results.run({"command": "test", "args": list(args), "run_id": run_id})
        assert response["run_id"] == run_id
        process.wait(timeout=120)
        err = drain(lines)
    finally:
        if process.poll() is None:
            process.kill()
    out = (tmp_path / "stdout").read_text()
    assert process.returncode == expected_exit, err
    prefix = f"reports/{run_path(response, results.stack.bucket)}"
    assert out == results.text(prefix + "summary.md").rstrip("\n") + "\n"
    assert f"run {run_id}: waiting for the runner's manifest" in err
    assert f"run {run_id} {outcome}" in err
    assert "Traceback" not in err


def test_run_wait_gives_up_at_the_timeout(aws_env, results, tmp_path):
    stdout = (tmp_path / "stdout").open("w+")
    process, lines = start_ltr(
        aws_env, stdout, "run", "scribe:generate", "--wait", "--timeout", "2"
    )
    run_id = accepted_run_id(lines)
    process.wait(timeout=60)
    err = drain(lines)
    assert process.returncode == 3
    assert (tmp_path / "stdout").read_text() == ""
    assert f"run {run_id}: no manifest under" in err and "/aws/lambda/" in err


def test_run_without_wait_prints_the_run_id(aws_env, results):
    code, out, err = run_ltr("run", "api:export-markdown")
    assert code == 0, err
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}\n", out)
    assert "accepted, HTTP 202" in err
