"""`python -m runner run ...` as a Fargate task runs it: a separate process, env only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.runner.conftest import FIXTURE_APP, RUNNER_IMAGE


def cli(*args, env, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "runner", "run", *args],
        env={**env, "PYTHONPATH": str(RUNNER_IMAGE)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_runs_the_database_tests_and_publishes(runner_env, database):
    result = cli(
        "--run-id", "fargate-7", "--json", "test", "--group", "database", env=dict(os.environ)
    )

    assert result.returncode == 0, result.stderr + result.stdout
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["status"] == "passed" and response["run_id"] == "fargate-7"
    assert "OK (3 tests" in result.stdout  # streamed as it came
    keys = runner_env.keys()
    assert [k.rsplit("/", 1)[1] for k in sorted(keys)] == [
        "junit.xml",
        "manifest.json",
        "output.log",
    ]
    assert all("/fargate-7/test/" in k for k in keys)
    assert database.password not in result.stdout + result.stderr


def test_cli_exit_codes_say_what_happened(runner_env):
    env = dict(os.environ)
    failed = cli("test", "--group", "outcomes", env=env)
    assert failed.returncode == 1 and failed.stderr.strip().splitlines()[-1].startswith(
        "failed s3://"
    )

    rejected = cli("test", "--filter", "$(reboot)", env=env)
    assert rejected.returncode == 2 and "shell syntax" in rejected.stderr

    timed_out = cli("--timeout", "2", "test", "--testsuite", "Slow", env=env)
    assert timed_out.returncode == 4 and "hanging test started" in timed_out.stdout


def test_cli_without_a_bucket_keeps_results_locally(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "RUNNER_APP_DIR": str(FIXTURE_APP),
        "TMPDIR": str(tmp_path),
    }
    result = cli("--json", "api:export-markdown", env=env)

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    kept = response["local_results"]
    assert response["results_uri"].startswith("file://")
    assert json.loads(Path(kept, "manifest.json").read_text())["status"] == "passed"
    assert Path(kept, "app/docs/api.md").read_text().startswith("# Fixture App API")


def test_cli_runs_one_shard_of_a_planned_run(runner_env):
    from runner.handler import handler

    from tests.runner.conftest import LambdaContext

    planned = handler(
        {"action": "plan", "command": "test", "run_id": "fargate-shards", "shards": 2},
        LambdaContext(),
    )
    assert planned["status"] == "planned", planned
    key = planned["plan_key"]
    shard = ["--run-id", "fargate-shards", "--count", "2", "--plan-key", key, "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "runner", "shard", "--index", "1", *shard],
        env={**os.environ, "PYTHONPATH": str(RUNNER_IMAGE)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["shard"] == {"index": 1, "count": 2}, result.stderr
    assert result.returncode == {"passed": 0, "failed": 1}[response["status"]]
    prefix = key.replace("plan.json", "shards/001/")
    assert set(runner_env.keys(prefix)) == {
        prefix + n for n in ("junit.xml", "manifest.json", "output.log")
    }

    refused = subprocess.run(
        [sys.executable, "-m", "runner", "shard", "--index", "2", *shard],
        env={**os.environ, "PYTHONPATH": str(RUNNER_IMAGE)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2 and "shard.index" in refused.stderr
