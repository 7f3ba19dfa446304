"""The results-bucket layout has one home (runner_image/runner/layout.py); the report processor's
zip cannot import the runner, so report_processor/routing.py keeps a copy. This holds the two
equal: every key the layout builds is classified by routing as intended, and the prefixes match.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runner import layout

from report_processor import routing

COMMANDS = ("test", "scribe:generate", "api:export-markdown", "Custom:Command", "a.b_c-d")
RUN_IDS = st.from_regex(layout.RUN_ID, fullmatch=True).filter(lambda r: ".." not in r)
STARTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def test_prefixes_are_equal():
    assert routing.RUNS_PREFIX == layout.RUNS_PREFIX == "runs/"
    assert routing.REPORTS_PREFIX == layout.REPORTS_PREFIX == "reports/"
    assert routing.LATEST_PREFIX == layout.LATEST_REPORT_PREFIX == "reports/latest/"
    assert routing.MARKER_PREFIX == layout.MARKER_PREFIX == "reports/.processed/"
    # Reports and markers live outside what triggers the processor, so it cannot trigger itself.
    for written_by_processor in (
        layout.REPORTS_PREFIX,
        layout.MARKER_PREFIX,
        layout.HISTORY_PREFIX,
    ):
        assert not written_by_processor.startswith(layout.RUNS_PREFIX)


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS))
def test_junit_key_is_acted_on_with_the_layouts_location(started, run_id, command):
    location = layout.RunLocation.of(started, run_id, command)
    run = routing.classify_key(location.junit_key)
    assert isinstance(run, routing.RunObject), run
    assert run.key == location.junit_key
    assert run.run_path == location.path
    assert run.run_id == location.run_id == run_id
    assert run.command_slug == location.slug
    assert run.report_prefix == location.report_prefix
    assert run.manifest_key == location.manifest_key


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS))
def test_other_run_files_are_not_acted_on(started, run_id, command):
    location = layout.RunLocation.of(started, run_id, command)
    for key in (
        location.manifest_key,
        location.output_log_key,
        location.artifact_key("public/docs/index.html"),
        location.artifact_key("docs/api.md"),
    ):
        assert isinstance(routing.classify_key(key), str), key


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS))
def test_what_the_processor_and_the_runner_write_elsewhere_is_not_acted_on(
    started, run_id, command
):
    location = layout.RunLocation.of(started, run_id, command)
    for key in (
        location.summary_markdown_key,
        location.summary_json_key,
        layout.LATEST_REPORT_PREFIX + layout.SUMMARY_MARKDOWN,
        layout.MARKER_PREFIX + "0" * 64 + ".json",
        layout.latest_docs_prefix(command) + "public/docs/sitemap.xml",
        layout.HISTORY_PREFIX + "index.json",
    ):
        assert isinstance(routing.classify_key(key), str), key


def test_xml_artifacts_of_a_run_are_not_acted_on():
    location = layout.RunLocation.of(datetime(2026, 1, 2, tzinfo=UTC), "r1", "scribe:generate")
    for key in (
        location.artifact_key("public/docs/sitemap.xml"),
        location.artifact_key("junit.xml/report.xml"),
        location.run_prefix + "JUNIT.XML",
    ):
        assert isinstance(routing.classify_key(key), str), key


def test_command_slug_is_the_one_the_runner_writes():
    assert layout.command_slug("scribe:generate") == "scribe-generate"
    assert layout.command_slug("api:export-markdown") == "api-export-markdown"
    assert layout.command_slug("Custom:Command") == "custom-command"
    assert layout.command_slug("::") == "command"


def test_run_location_of_a_run():
    location = layout.RunLocation.of(datetime(2026, 1, 2, 23, 59, tzinfo=UTC), "r1", "test")
    assert location.run_prefix == "runs/2026-01-02/r1/test/"
    assert location.report_prefix == "reports/2026-01-02/r1/test/"
    assert location.junit_key == "runs/2026-01-02/r1/test/junit.xml"
    assert location.summary_json_key == "reports/2026-01-02/r1/test/summary.json"
    assert layout.latest_docs_prefix("scribe:generate") == "docs/latest/scribe-generate/"


@pytest.mark.parametrize("run_id", ["../etc", "a/b", "", "-x", "a" * 65, "a b", "r1\n", "a..b", 5])
def test_run_ids_that_could_escape_a_prefix_are_rejected(run_id):
    with pytest.raises(layout.InvalidRunId, match="run_id"):
        layout.validate_run_id(run_id)


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS))
def test_parse_result_key_inverts_the_layout(started, run_id, command):
    location = layout.RunLocation.of(started, run_id, command)
    assert layout.parse_result_key(location.manifest_key) == layout.ResultKey(
        "runs", location, layout.MANIFEST
    )
    assert layout.parse_result_key(location.summary_json_key) == layout.ResultKey(
        "reports", location, layout.SUMMARY_JSON
    )


def test_history_library_keys_stay_under_the_layouts_history_prefix():
    """report_processor/history/keys.py is the zip's copy of the history layout (issue 12)."""
    from report_processor.history import keys

    assert keys.HISTORY_PREFIX == layout.HISTORY_PREFIX
    assert not layout.HISTORY_PREFIX.startswith((layout.RUNS_PREFIX, layout.REPORTS_PREFIX))


# ----------------------------------------------------------------------------- sharded runs
SHARD_INDEXES = st.integers(min_value=0, max_value=layout.MAX_SHARD_INDEX)


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS), index=SHARD_INDEXES)
def test_shard_files_and_the_plan_are_never_acted_on(started, run_id, command, index):
    """Only the run-level junit.xml (written by the merge) starts the report processor."""
    location = layout.RunLocation.of(started, run_id, command)
    shard = layout.shard_prefix(location, index)
    assert shard == f"{location.run_prefix}shards/{index:03d}/"
    for key in (
        shard + layout.JUNIT,
        shard + layout.MANIFEST,
        shard + layout.OUTPUT_LOG,
        location.plan_key,
    ):
        assert key.startswith(location.run_prefix)
        assert isinstance(routing.classify_key(key), str), key
    assert layout.parse_plan_key(location.plan_key) == location


def test_sharded_run_keys_are_the_contracts():
    location = layout.RunLocation.of(datetime(2026, 1, 2, tzinfo=UTC), "r1", "test")
    assert location.plan_key == "runs/2026-01-02/r1/test/plan.json"
    assert layout.shard_prefix(location, 0) == "runs/2026-01-02/r1/test/shards/000/"
    assert layout.shard_prefix(location, 12) == "runs/2026-01-02/r1/test/shards/012/"
    assert layout.PLAN == "plan.json"


@pytest.mark.parametrize("index", [-1, 1000, True, 1.0, "1", None])
def test_shard_indexes_outside_the_three_digit_folder_are_refused(index):
    location = layout.RunLocation.of(datetime(2026, 1, 2, tzinfo=UTC), "r1", "test")
    with pytest.raises(ValueError, match="shard index"):
        layout.shard_prefix(location, index)


@pytest.mark.parametrize(
    "key",
    [
        "runs/2026-01-02/r1/test/junit.xml",
        "runs/2026-01-02/r1/test/shards/000/plan.json",
        "reports/2026-01-02/r1/test/plan.json",
        "runs/2026-01-02/../test/plan.json",
        "runs/2026-1-2/r1/test/plan.json",
        "runs/2026-01-02/r1/Test/plan.json",
        "plan.json",
    ],
)
def test_keys_that_are_not_a_runs_plan_are_not_parsed_as_one(key):
    assert layout.parse_plan_key(key) is None


def test_durations_key_is_the_history_libraries():
    assert (
        layout.history_durations_key("shop", "staging", "test")
        == "history/shop/staging/test/durations.json"
    )
    from report_processor.history import keys

    if not hasattr(keys, "durations_key"):
        pytest.skip("report_processor/history/keys.py has no durations_key yet (issue 12, hwire)")
    for project, environment, slug in (("shop", "staging", "test"), ("a.b", "p_1", "x-y")):
        assert layout.history_durations_key(project, environment, slug) == keys.durations_key(
            project, environment, slug
        )
    assert (
        keys.QUARANTINE_NAME,
        keys.INDEX_NAME,
        keys.DURATIONS_NAME,
        keys.RUNS_FOLDER,
        keys.ROWS_NAME,
        keys.DIGEST_NAME,
        keys.FAILING_NAME,
        keys.CLASSES_NAME,
        keys.RUN_RECORD_NAME,
    ) == (
        layout.HISTORY_QUARANTINE,
        layout.HISTORY_INDEX,
        layout.HISTORY_DURATIONS,
        layout.HISTORY_RUNS,
        layout.HISTORY_ROWS,
        layout.HISTORY_DIGEST,
        layout.HISTORY_FAILING,
        layout.HISTORY_CLASSES,
        layout.HISTORY_RUN_RECORD,
    )


SEGMENTS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(
    lambda value: value not in (".", "..")
)
HISTORY_RUN_IDS = st.one_of(
    RUN_IDS, st.text(max_size=70), RUN_IDS.map(lambda run_id: run_id + "\n")
)


@given(
    project=SEGMENTS,
    environment=SEGMENTS,
    command=st.sampled_from(COMMANDS),
    started=STARTS,
    run_id=HISTORY_RUN_IDS,
)
def test_history_keys_are_the_same_in_the_layout_and_the_processor(
    project, environment, command, started, run_id
):
    from report_processor.history import keys

    slug = layout.command_slug(command)
    scope = keys.HistoryScope(project, environment, slug)
    run_key = layout.history_run_key(started, run_id)
    assert run_key == keys.make_run_key(started, run_id)
    assert layout.history_prefix(project, environment, slug) == scope.prefix
    assert layout.history_quarantine_key(project, environment) == keys.quarantine_key(
        project, environment
    )
    assert layout.history_index_key(project, environment, slug) == keys.index_key(scope)
    assert layout.history_durations_key(project, environment, slug) == keys.durations_key(
        project, environment, slug
    )
    assert layout.history_run_prefix(project, environment, slug, run_key) == keys.run_prefix(
        scope, run_key
    )
    for name, build in (
        (layout.HISTORY_ROWS, keys.rows_key),
        (layout.HISTORY_DIGEST, keys.digest_key),
        (layout.HISTORY_FAILING, keys.failing_key),
        (layout.HISTORY_CLASSES, keys.classes_key),
        (layout.HISTORY_RUN_RECORD, keys.run_record_key),
    ):
        assert layout.history_run_object_key(project, environment, slug, run_key, name) == build(
            scope, run_key
        )
    # Nothing the history writes triggers the processor.
    assert isinstance(routing.classify_key(keys.rows_key(scope, run_key)), str)


@pytest.mark.parametrize(
    ("project", "environment", "slug"),
    [("../x", "prod", "test"), ("shop", "a/b", "test"), ("shop", "prod", "quarantine.json"),
     ("shop", "prod", "Test"), ("", "prod", "test"), ("shop", "prod\n", "test"),
     ("shop", "prod", "test\n")],
)  # fmt: skip
def test_history_keys_refuse_what_could_leave_their_prefix(project, environment, slug):
    from report_processor.history import keys

    with pytest.raises(layout.InvalidHistoryKey):
        layout.history_durations_key(project, environment, slug)
    with pytest.raises(keys.HistoryKeyError):
        keys.durations_key(project, environment, slug)


# ----------------------------------------------------------------------------- the merge's mirror
# report_processor/merge.py (in the report processor's zip, which cannot import the runner) keeps
# copies of the plan's name and the shard folders: held equal to runner/layout.py here.


def test_the_merges_file_names_are_the_layouts():
    from report_processor import merge

    assert merge.PLAN_FILE == layout.PLAN
    assert merge.SHARDS_DIR + "/" == layout.SHARDS_FOLDER
    assert merge.MANIFEST_FILE == layout.MANIFEST
    assert merge.JUNIT_FILE == layout.JUNIT
    assert merge.MAX_SHARDS == layout.MAX_SHARD_INDEX + 1


@given(started=STARTS, run_id=RUN_IDS, command=st.sampled_from(COMMANDS), index=SHARD_INDEXES)
def test_the_merge_reads_the_shard_files_where_the_runner_writes_them(
    started, run_id, command, index
):
    from report_processor import merge

    location = layout.RunLocation.of(started, run_id, command)
    request = merge.parse_merge_event(
        {"action": "merge", "bucket": "results-bucket", "plan_key": location.plan_key, "shards": []}
    )
    assert request.plan_key == location.plan_key
    assert request.run_prefix == location.run_prefix
    assert request.shard_prefix(index) == layout.shard_prefix(location, index)


@pytest.mark.parametrize(
    "key",
    [
        "runs/2026-01-02/r1/test/junit.xml",
        "runs/2026-01-02/r1/test/shards/000/plan.json",
        "reports/2026-01-02/r1/test/plan.json",
        "runs/2026-01-02/../test/plan.json",
        "runs/2026-01-02/.hidden/test/plan.json",
        "runs/2026-01-02/" + "r" * 65 + "/test/plan.json",
        "runs/2026-01-02/r1/Test/plan.json",
    ],
)
def test_the_merge_refuses_what_is_not_a_runs_plan(key):
    from report_processor import merge

    assert layout.parse_plan_key(key) is None
    with pytest.raises(merge.MergeRejected):
        merge.parse_merge_event(
            {"action": "merge", "bucket": "results-bucket", "plan_key": key, "shards": []}
        )


def test_execution_names_are_run_ids():
    """The state machine passes its execution's name as the run id: EventBridge names the
    executions it starts with a UUID, ltr with the runner's own new_run_id. Both must pass the
    runner's run-id rule, so the plan never refuses a legitimate execution."""
    import uuid

    from runner.events import new_run_id, parse_event

    for name in (str(uuid.uuid4()), str(uuid.UUID(int=0)), new_run_id(datetime.now(UTC))):
        assert layout.validate_run_id(name) == name
        event = {"action": "plan", "command": "test", "run_id": name, "shards": 3, "args": []}
        request = parse_event(event, ["test"], datetime.now(UTC))
        assert request.run_id == name
