"""Bad input and missing resources: one clear line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.services import free_port
from tests.ltr.helpers import EXAMPLE_CONFIG as EXAMPLE
from tests.ltr.helpers import assert_one_line_error, other_env_config, run_ltr


def test_unknown_command_is_rejected_before_any_aws_call(monkeypatch):
    # No endpoint at all: a rejection that needed AWS would fail differently.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, out, err = run_ltr("run", "migrate:fresh", "--wait")
    assert_one_line_error(code, err, "'migrate:fresh' is not allowed", "test, scribe:generate")
    assert out == ""


def test_argument_with_a_newline_is_rejected(aws_env):
    code, _, err = run_ltr("run", "test", "--filter", "a\nb")
    assert_one_line_error(code, err, "contains a control character")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--log-junit=/etc/passwd"], "--log-junit is set by the runner"),
        (["--filter", "x;rm -rf /"], "shell syntax"),
        (["--bogus"], "option '--bogus' is not accepted for test"),
        (["--filter", "--group"], "may not start with '-'"),
    ],
)
def test_runner_argument_rules_apply_before_anything_starts(aws_env, monkeypatch, args, fragment):
    """The runner's own per-command table (runner_image/runner/commands.py) decides."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = run_ltr("run", "test", *args, "--wait")
    assert_one_line_error(code, err, fragment)


def test_missing_config_names_the_file(aws_env, tmp_path):
    code, _, err = run_ltr("runs", "--config", str(tmp_path / "nope.json"))
    assert_one_line_error(code, err, "nope.json", "copy config/example.json")


def test_invalid_config_names_the_field(aws_env, tmp_path):
    raw = json.loads(EXAMPLE.read_text())
    raw["runner"]["timeout_seconds"] = 5000
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    code, _, err = run_ltr("runs", "--config", str(path))
    assert_one_line_error(code, err, "runner.timeout_seconds")


def test_env_name_cannot_be_a_path(aws_env):
    code, _, err = run_ltr("runs", "--env", "../../etc/passwd")
    assert_one_line_error(code, err, "--env")


def test_missing_function_says_deploy(aws_env, tmp_path):
    config = other_env_config(tmp_path, "nodeploy")
    code, _, err = run_ltr("run", "test", "--config", str(config))
    assert_one_line_error(code, err, "ltr-nodeploy-runner", "not found", "cdktf deploy")


def test_missing_bucket_says_deploy(aws_env, tmp_path):
    config = other_env_config(tmp_path, "nobucket")
    for argv in (["runs"], ["report", "r1"], ["docs"]):
        code, _, err = run_ltr(*argv, "--config", str(config))
        assert_one_line_error(code, err, "ltr-nobucket-test-results", "not found")


def test_unreachable_endpoint(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = run_ltr("runs")
    assert_one_line_error(code, err, "endpoint unreachable", "AWS_ENDPOINT_URL")


def test_no_credentials(aws_env, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Nowhere else to find credentials either: no files, no instance metadata.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _, err = run_ltr("run", "test")
    assert_one_line_error(code, err, "no AWS credentials")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["report", "../x"], "invalid run_id '../x'"),
        (["report", "r1", "--format", "xml"], "invalid choice"),
        (["runs", "--limit", "0"], "--limit 0"),
        (["docs", "--expires", "0"], "--expires 0"),
        (["frobnicate"], "invalid choice"),
        (["run"], "which command?"),
    ],
)
def test_bad_arguments(aws_env, argv, fragment):
    code, _, err = run_ltr(*argv)
    assert_one_line_error(code, err, fragment)


def test_unknown_run_id(aws_env):
    code, _, err = run_ltr("report", "20990101T000000Z-00000000")
    assert_one_line_error(code, err, "no run '20990101T000000Z-00000000'", "ltr runs")


def test_console_script_exits_2_without_traceback(aws_env, tmp_path):
    """The installed entry point (or `python -m ltr` before the editable install)."""
    script = Path(sys.executable).parent / "ltr"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ltr"]
    config = other_env_config(tmp_path, "nobucket")
    result = subprocess.run(
        [*command, "runs", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **aws_env},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "ltr-nobucket-test-results" in result.stderr
