"""The Lambda handler invoked in-process as Lambda would, against the moto server over HTTP,
a real PostgreSQL and the fixture Laravel app run by real PHP."""

from __future__ import annotations

import json
import os
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runner.handler import handler

from tests.runner.conftest import FIXTURE_APP, LambdaContext

pytestmark = pytest.mark.timeout(300)


def run_prefix(response: dict, command_slug: str) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"runs/{today}/{response['run_id']}/{command_slug}/"


def junit_outcomes(xml: bytes) -> dict[str, str]:
    outcomes = {}
    # The report comes from this test's own PHPUnit run, not from outside.
    for case in ET.fromstring(xml).iter("testcase"):  # noqa: S314
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('class')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return outcomes


def fixture_tree() -> dict[str, int]:
    return {
        str(path.relative_to(FIXTURE_APP)): path.stat().st_mtime_ns
        for path in FIXTURE_APP.rglob("*")
        if path.is_file()
    }


def test_database_tests_pass_against_real_postgresql(runner_env, database):
    before = fixture_tree()
    response = handler({"command": "test", "args": ["--group", "database"]}, LambdaContext())

    assert response["status"] == "passed", response
    assert response["exit_code"] == 0
    prefix = run_prefix(response, "test")
    assert response["results_uri"] == f"s3://{runner_env.bucket}/{prefix}"
    assert sorted(runner_env.keys()) == sorted(
        [prefix + "output.log", prefix + "junit.xml", prefix + "manifest.json"]
    )
    outcomes = junit_outcomes(runner_env.read(prefix + "junit.xml"))
    assert outcomes == {
        "Tests\\Feature\\NoteApiTest::test_the_database_is_postgresql": "passed",
        "Tests\\Feature\\NoteApiTest::test_a_note_is_stored_and_read_back": "passed",
        "Tests\\Feature\\NoteApiTest::test_a_note_needs_a_title": "passed",
    }
    manifest = json.loads(runner_env.read(prefix + "manifest.json"))
    assert manifest["run_id"] == response["run_id"]
    assert manifest["command"] == "test"
    assert manifest["args"] == ["--group", "database"]
    assert manifest["status"] == "passed"
    assert manifest["exit_code"] == 0
    assert manifest["app_version"] == "1.4.0"
    assert manifest["image_version"] == "test-image"
    assert manifest["duration_seconds"] > 0
    assert manifest["artifacts"][-1] == prefix + "junit.xml"
    assert set(manifest["artifacts"]) == set(runner_env.keys()) - {prefix + "manifest.json"}
    assert "OK (3 tests" in runner_env.read(prefix + "output.log").decode()
    assert "OK (3 tests" in response["output_tail"]
    # The app is read-only in Lambda: the run wrote nothing into it.
    assert fixture_tree() == before


def test_failures_errors_and_skips_make_a_failed_run(runner_env, database):
    response = handler({"command": "test", "args": []}, LambdaContext())

    assert response["status"] == "failed"
    assert response["exit_code"] == 2
    outcomes = junit_outcomes(runner_env.read(run_prefix(response, "test") + "junit.xml"))
    assert outcomes["Tests\\Unit\\OutcomesTest::test_a_failing_assertion"] == "failure"
    assert outcomes["Tests\\Unit\\OutcomesTest::test_an_error"] == "error"
    assert outcomes["Tests\\Unit\\OutcomesTest::test_a_skip"] == "skipped"
    assert outcomes["Tests\\Feature\\NoteApiTest::test_a_note_is_stored_and_read_back"] == "passed"
    assert outcomes["Tests\\Feature\\HealthTest::test_storage_is_writable"] == "passed"
    assert not any("Slow" in name for name in outcomes)
    assert (
        outcomes[
            "Tests\\Feature\\ConnectionDumpTest::test_prints_and_fails_with_the_connection_settings"
        ]
        == "failure"
    )
    assert "Tests: 13" in response["output_tail"]


def test_no_secret_value_reaches_s3_or_the_response(runner_env, database):
    # The `leaky` test prints the credentials and fails with them in its message.
    response = handler({"command": "test", "args": ["--group", "leaky"]}, LambdaContext())

    assert response["status"] == "failed"
    objects = runner_env.everything()
    prefix = run_prefix(response, "test")
    assert b"debug: connecting as ******** with password ********" in objects[prefix + "output.log"]
    assert b"could not use pgsql://********:********@127.0.0.1/" in objects[prefix + "junit.xml"]
    assert "password ********" in response["output_tail"]
    responses = [response]
    for value in (database.password, database.username):
        for key, body in objects.items():
            assert value.encode() not in body, f"{value!r} leaked into {key}"
        assert value not in json.dumps(responses)


def test_scribe_docs_are_uploaded_and_published_as_latest(runner_env):
    response = handler({"command": "scribe:generate", "args": ["--force"]}, LambdaContext())

    assert response["status"] == "passed", response
    prefix = run_prefix(response, "scribe-generate")
    keys = set(runner_env.keys())
    for relative in (
        "public/docs/index.html",
        "public/docs/collection.json",
        ".scribe/endpoints.json",
    ):
        assert prefix + relative in keys
        assert "docs/latest/scribe-generate/" + relative in keys
    html = runner_env.read(prefix + "public/docs/index.html").decode()
    assert "GET /api/notes/{note}" in html
    assert "Create a note from a title and an optional body." in html
    endpoints = json.loads(runner_env.read(prefix + ".scribe/endpoints.json"))
    assert [e["uri"] for e in endpoints] == [
        "/api/health",
        "/api/notes",
        "/api/notes",
        "/api/notes/{note}",
    ]
    manifest = json.loads(runner_env.read(prefix + "manifest.json"))
    assert set(manifest["artifacts"]) == keys - {prefix + "manifest.json"}


def test_markdown_export_lands_under_docs(runner_env):
    response = handler(
        {"command": "api:export-markdown", "args": ["--title=Notes API"], "run_id": "nightly-42"},
        LambdaContext(),
    )

    assert response["status"] == "passed", response
    assert response["run_id"] == "nightly-42"
    prefix = run_prefix(response, "api-export-markdown")
    markdown = runner_env.read(prefix + "docs/api.md").decode()
    assert markdown.startswith("# Notes API\n")
    assert "| POST | `/api/notes` | notes.store |" in markdown
    assert runner_env.read("docs/latest/api-export-markdown/docs/api.md").decode() == markdown


def test_a_hanging_test_is_stopped_at_the_deadline(runner_env, monkeypatch):
    monkeypatch.setenv("RUNNER_DEADLINE_MARGIN_SECONDS", "4")
    monkeypatch.setenv("RUNNER_KILL_GRACE_SECONDS", "1")
    started = time.monotonic()
    response = handler(
        {"command": "test", "args": ["--testsuite", "Slow"]}, LambdaContext(timeout_seconds=10)
    )
    elapsed = time.monotonic() - started

    assert response["status"] == "timed_out", response
    assert elapsed < 10, "the run must end before the Lambda timeout"
    prefix = run_prefix(response, "test")
    log = runner_env.read(prefix + "output.log").decode()
    assert "hanging test started" in log
    assert "[runner] stopped at the deadline" in log
    manifest = json.loads(runner_env.read(prefix + "manifest.json"))
    assert manifest["status"] == "timed_out"
    # Nothing of the run is left behind: PHPUnit was a grandchild in the killed group.
    assert not _processes_running("tests/Slow") and not _processes_running("--testsuite Slow")


def _processes_running(fragment: str) -> bool:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "phpunit" in cmdline and fragment in cmdline:
                return True
    return False


def test_missing_secret_is_an_error_that_names_it(runner_env, monkeypatch):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ltr/missing-AbCdEf"
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    response = handler({"command": "test"}, LambdaContext())

    assert response["status"] == "error"
    assert arn in response["message"] and "ResourceNotFoundException" in response["message"]
    prefix = run_prefix(response, "test")
    manifest = json.loads(runner_env.read(prefix + "manifest.json"))
    assert manifest["status"] == "error" and manifest["exit_code"] is None
    assert arn in runner_env.read(prefix + "output.log").decode()


def test_unreachable_database_is_an_error(runner_env, postgres, monkeypatch):
    from demo.services import DatabaseCredentials, free_port

    closed = DatabaseCredentials("app", "not-the-password", "127.0.0.1", free_port(), "app")
    arn = runner_env.secrets.create_secret(
        Name="ltr/unreachable", SecretString=closed.as_secret_json()
    )["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    response = handler({"command": "test"}, LambdaContext())

    assert response["status"] == "error"
    assert re.search(
        r"database unreachable at 127\.0\.0\.1:\d+ \(ConnectionRefusedError", response["message"]
    )
    assert "not-the-password" not in json.dumps(response)
    assert run_prefix(response, "test") + "manifest.json" in set(runner_env.keys())


def test_upload_failure_keeps_everything_locally(runner_env, monkeypatch):
    monkeypatch.setenv("RESULTS_BUCKET", "ltr-no-such-bucket")
    response = handler({"command": "api:export-markdown"}, LambdaContext())

    assert response["status"] == "error"
    assert "s3://ltr-no-such-bucket/" in response["message"]
    assert "NoSuchBucket" in response["message"]
    kept = Path(response["local_results"])
    assert kept.is_dir() and str(kept) in response["message"]
    assert (kept / "output.log").read_text().startswith("Wrote docs/api.md")
    assert (kept / "app" / "docs" / "api.md").is_file()
    assert json.loads((kept / "manifest.json").read_text())["status"] == "error"


def test_a_reused_run_id_is_rejected_not_overwritten(runner_env):
    first = handler({"command": "api:export-markdown", "run_id": "dup-1"}, LambdaContext())
    second = handler({"command": "api:export-markdown", "run_id": "dup-1"}, LambdaContext())

    assert first["status"] == "passed"
    assert second["status"] == "rejected"
    assert "dup-1" in second["reason"]


INJECTIONS = [
    {"command": "test; cat /etc/passwd"},
    {"command": "test", "args": ["--filter", "x; rm -rf /"]},
    {"command": "test", "args": ["--filter", "a|b", "|", "cat"]},
    {"command": "test", "args": ["--filter", "$(id)"]},
    {"command": "test", "args": ["--filter", "`id`"]},
    {"command": "test", "args": ["--filter", "--log-junit=/etc/passwd"]},
    {"command": "test", "args": ["--log-junit=/etc/cron.d/x"]},
    {"command": "test", "args": ["--log-junit", "/tmp/x.xml"]},
    {"command": "test", "args": ["--configuration", "/tmp/evil.xml"]},
    {"command": "test", "args": ["--bootstrap", "/tmp/evil.php"]},
    {"command": "test", "args": ["tests/../../../etc"]},
    {"command": "test", "args": ["--group", "a\nb"]},
    {"command": "test", "args": ["--group", "a\0b"]},
    {"command": "test", "run_id": "../../etc"},
    {"command": "test", "run_id": "a/b"},
    {"command": "test", "run_id": "x..y"},
    {"command": "migrate:fresh"},
    {"command": "tinker"},
    {"command": "test", "args": "--filter x"},
    {"command": "test", "args": ["--filter", "x" * 5000]},
    {"command": "test", "args": ["--testdox"] * 40},
    {"command": "test", "payload": "x" * 20000},
    {"command": "test", "extra": 1},
    {},
]


@pytest.mark.parametrize("event", INJECTIONS, ids=lambda e: json.dumps(e)[:60])
def test_hostile_events_are_rejected_and_start_nothing(runner_env, event):
    tmp_before = set(os.listdir(os.environ["TMPDIR"]))
    response = handler(event, LambdaContext())

    assert response["status"] == "rejected"
    assert response["reason"]
    assert runner_env.keys() == []
    assert set(os.listdir(os.environ["TMPDIR"])) == tmp_before


def test_event_that_is_not_an_object_is_rejected(runner_env):
    response = handler(["test"], LambdaContext())
    assert response["status"] == "rejected"
    assert "JSON object" in response["reason"]


def test_bad_configuration_is_reported_not_raised(runner_env, monkeypatch):
    monkeypatch.setenv("RUNNER_COMMANDS", "test,scribe:generate")
    response = handler({"command": "test"}, LambdaContext())
    assert response["status"] == "error"
    assert "RUNNER_COMMANDS is not JSON" in response["message"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "pass\0word"}, "password contains a NUL character"),
        ({"username": "app\0user"}, "username contains a NUL character"),
        ({"dbname": "app\0db"}, "dbname contains a NUL character"),
        ({"host": "a" * 64 + ".example.com"}, "host is not a DNS name or IP address"),
        ({"port": "54x32"}, "port must be a number from 1 to 65535"),
    ],
)
def test_malformed_secret_values_end_the_run_cleanly(
    runner_env, postgres, monkeypatch, fields, message
):
    # A reachable database: the values must be refused before anything uses them.
    secret = {
        "username": "app",
        "password": "pw-1234",
        "host": postgres.host,
        "port": postgres.port,
    }
    arn = runner_env.secrets.create_secret(
        Name=f"ltr/malformed/{abs(hash(json.dumps(fields)))}",
        SecretString=json.dumps({**secret, **fields}),
    )["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    response = handler({"command": "test"}, LambdaContext())

    assert response["status"] == "error"
    assert message in response["message"] and arn in response["message"]
    assert "\0" not in json.dumps(response)
    prefix = run_prefix(response, "test")
    manifest = json.loads(runner_env.read(prefix + "manifest.json"))
    assert manifest["status"] == "error" and message in manifest["message"]
    assert message in runner_env.read(prefix + "output.log").decode()
    assert os.listdir(os.environ["TMPDIR"]) == [], "the work folder is cleaned"
