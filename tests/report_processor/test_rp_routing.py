"""Pure routing decisions: which keys are acted on, where reports go, dedup markers."""

import pytest

from report_processor.routing import (
    REPORTS_PREFIX,
    RUNS_PREFIX,
    RunObject,
    classify_key,
    command_slug,
    marker_key,
    metric_command,
    run_metadata,
)


def test_run_junit_keys_map_to_report_prefixes():
    run = classify_key("runs/2025-11-27/r-1/test/junit.xml")
    assert run == RunObject("runs/2025-11-27/r-1/test/junit.xml", "2025-11-27/r-1/test")
    assert run.report_prefix == "reports/2025-11-27/r-1/test/"
    assert run.manifest_key == "runs/2025-11-27/r-1/test/manifest.json"
    assert (run.run_id, run.command_slug) == ("r-1", "test")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("reports/2025-11-27/r-1/test/summary.json", "not under runs/"),
        ("runs/2025-11-27/r-1/test/output.log", "not a run's JUnit report"),
        ("runs/2025-11-27/r-1/scribe-generate/sitemap.xml", "not a run's JUnit report"),
        ("runs/2025-11-27/r-1/scribe-generate/docs/junit.xml", "not a run's JUnit report"),
        ("runs/2025-11-27/r-1/test/JUNIT.XML", "not a run's JUnit report"),
        ("runs/junit.xml", "not a run's JUnit report"),
        ("runs/2025-11-27/../../reports/latest/junit.xml", "not a run's JUnit report"),
        ("runs/2025-11-27/../test/junit.xml", "unsafe key"),
        ("runs/2025-11-27//test/junit.xml", "unsafe key"),
        ("runs/latest/r-1/test/junit.xml", "is not a YYYY-MM-DD date"),
        ("runs/2025-11-27/r\n1/test/junit.xml", "unsafe key"),
        ("runs/" + "a/" * 600 + "junit.xml", "longer than"),
    ],
)
def test_other_keys_are_ignored_with_a_reason(key, reason):
    result = classify_key(key)
    assert isinstance(result, str) and reason in result


def test_markers_differ_per_object_version_and_live_under_reports():
    a = marker_key("b", "runs/x/test/junit.xml", "v1")
    assert a == marker_key("b", "runs/x/test/junit.xml", "v1")
    assert a != marker_key("b", "runs/x/test/junit.xml", "v2")
    assert a.startswith("reports/.processed/") and a.endswith(".json")


def test_metadata_prefers_a_valid_manifest_and_falls_back_to_the_key():
    run = classify_key("runs/2025-11-27/r-1/scribe-generate/junit.xml")
    manifest = {"run_id": "r-1", "command": "scribe:generate", "started_at": "2025-11-27T02:00Z"}
    meta = run_metadata(run, manifest, "shop", "dev")
    assert (meta.run_id, meta.command, meta.project) == ("r-1", "scribe:generate", "shop")
    allowed = frozenset({"test", "scribe:generate"})
    assert metric_command(meta, run, allowed) == "scribe:generate"
    junk = run_metadata(run, {"run_id": 7, "command": "x; rm -rf /" * 3}, None, None)
    assert junk.run_id == "r-1"
    # Junk never becomes a dimension; the key's slug maps back to its allowlisted command.
    assert metric_command(junk, run, allowed) == "scribe:generate"
    assert metric_command(junk, run, frozenset({"test"})) == "other"
    assert run_metadata(run, ["not", "a", "dict"], None, None).command == "scribe-generate"


def test_manifest_status_duration_and_exit_code_are_taken_only_when_well_formed():
    run = classify_key("runs/2025-11-27/r-1/test/junit.xml")
    good = {"status": "timed_out", "exit_code": 124, "duration_seconds": 900.5}
    meta = run_metadata(run, good, None, None)
    assert (meta.runner_status, meta.exit_code, meta.duration_seconds) == ("timed_out", 124, 900.5)
    bad = {"status": "great", "exit_code": True, "duration_seconds": float("inf")}
    meta = run_metadata(run, bad, None, None)
    assert (meta.runner_status, meta.exit_code, meta.duration_seconds) == (None, None, None)


# The runner's own layout rules (the report-processor zip cannot import them: held equal here).
@pytest.mark.parametrize("command", ["test", "scribe:generate", "api:export-markdown", "Db:Seed"])
def test_routing_accepts_exactly_the_keys_the_runner_writes(command):
    from datetime import UTC, datetime

    from runner.events import new_run_id
    from runner.layout import command_slug as runner_slug
    from runner.layout import run_prefix

    started = datetime(2025, 11, 27, 2, 0, tzinfo=UTC)
    run_id = new_run_id(started)
    prefix = run_prefix(started, run_id, command)
    run = classify_key(prefix + "junit.xml")
    assert isinstance(run, RunObject), run
    assert run.report_prefix == REPORTS_PREFIX + prefix[len(RUNS_PREFIX) :]
    assert run.manifest_key == prefix + "manifest.json"
    assert (run.run_id, run.command_slug) == (run_id, runner_slug(command))
    assert command_slug(command) == runner_slug(command)
    for other in ("output.log", "manifest.json"):
        assert isinstance(classify_key(prefix + other), str)
