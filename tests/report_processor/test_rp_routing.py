"""Pure routing decisions: which keys are acted on, where reports go, dedup markers."""

import pytest

from report_processor.routing import (
    RunObject,
    classify_key,
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
        ("runs/2025-11-27/r-1/test/output.log", "not a JUnit .xml"),
        ("runs/junit.xml", "no run folder"),
        ("runs/2025-11-27/../../reports/latest/junit.xml", "unsafe key"),
        ("runs/2025-11-27//test/junit.xml", "unsafe key"),
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
    assert metric_command(meta, run) == "scribe:generate"
    junk = run_metadata(run, {"run_id": 7, "command": "x; rm -rf /" * 3}, None, None)
    assert junk.run_id == "r-1"
    assert metric_command(junk, run) == "scribe-generate"  # high-cardinality junk never a dimension
    assert run_metadata(run, ["not", "a", "dict"], None, None).command == "scribe-generate"
