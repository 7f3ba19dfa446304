"""`ltr history`, `ltr report --compare`, `ltr flaky` and `ltr quarantine` against the emulator,
over a history the real library recorded (HistorySession writing through S3HistoryStore over
HTTP into the stack's bucket, as the report processor does).

Five nights of `test` on an environment of its own (its own bucket), started 5..1 days ago so
the flakiness window (days before now) sees them:

    night        n0   n1   n2   n3   n4
    app version  v1   v1   v1   v2   v2
    test_a       pass pass pass fail fail   new failure in n3 (a new version), not flaky
    test_b       pass fail pass fail pass   flaky: passed and failed on v1, 4 flips
    test_c       fail fail fail pass pass   fixed in n3
    test_d       pass pass pass pass skip
    test_e       pass pass  -    -    -     disappeared in n2
    test_f        -    -   pass pass pass   new in n2
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modules.config import load_config
from report_processor.history.keys import HistoryScope, quarantine_key
from report_processor.history.queries import add_to_quarantine, list_quarantine
from report_processor.history.records import HistoryConfig, RunInfo
from report_processor.history.s3 import S3HistoryStore
from report_processor.history.section import HistorySection
from report_processor.history.session import HistorySession
from tests.history.helpers import CLASS, FILE, OUTCOMES, PREFIX
from tests.ltr.helpers import assert_one_line_error, other_env_config, run_ltr

ENVIRONMENT = "hist"
NIGHTS = {
    "test_a": "pass pass pass fail fail",
    "test_b": "pass fail pass fail pass",
    "test_c": "fail fail fail pass pass",
    "test_d": "pass pass pass pass skip",
    "test_e": "pass pass - - -",
    "test_f": "- - pass pass pass",
}
VERSIONS = ("v1", "v1", "v1", "v2", "v2")
NOW = datetime.now(UTC)


def tid(name: str) -> str:
    return PREFIX + name


@dataclass
class History:
    config_path: Path
    bucket: str
    store: S3HistoryStore
    scope: HistoryScope
    started: list[datetime]

    def record(
        self,
        run_id: str,
        started_at: datetime,
        outcomes: dict[str, str],
        version: str = "v2",
        scope: HistoryScope | None = None,
        case_class: str = CLASS,
    ) -> HistorySection:
        """One report through the real library, as the report processor records it."""
        info = RunInfo(run_id, started_at, version, "img-1", "failed")
        session = HistorySession.open(self.store, scope or self.scope, info, HistoryConfig())
        for name, outcome in outcomes.items():
            session.on_case(FILE, case_class, name, OUTCOMES[outcome], 0.25, False)
        return session.finish({})


@pytest.fixture(scope="module")
def history(ltr_stack, tmp_path_factory) -> History:
    config_path = other_env_config(tmp_path_factory.mktemp("hist"), ENVIRONMENT)
    config = load_config(config_path)
    bucket = config.names.results_bucket
    s3 = ltr_stack.emulator.client("s3")
    s3.create_bucket(Bucket=bucket)
    made = History(
        config_path,
        bucket,
        S3HistoryStore(bucket, s3),
        HistoryScope(config.project, config.environment, "test"),
        [NOW - timedelta(days=5 - night, hours=1) for night in range(5)],
    )
    for night, started in enumerate(made.started):
        outcomes = {
            name: row.split()[night] for name, row in NIGHTS.items() if row.split()[night] != "-"
        }
        made.record(f"n{night}", started, outcomes, VERSIONS[night])
    return made


def ltr(history: History, *argv: str) -> tuple[int, str, str]:
    return run_ltr(*argv, "--config", str(history.config_path))


def table_rows(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


# --------------------------------------------------------------------------- ltr history


def test_history_shows_a_tests_outcomes_newest_first_with_times_and_versions(aws_env, history):
    code, out, err = ltr(history, "history", "ShopTest::test_a")
    assert code == 0, err
    assert out.splitlines()[0] == tid("test_a")
    assert "ran in 5 of the last 5 recorded runs, failed or errored in 2" in out
    rows = table_rows(out, "STARTED")
    # STARTED is "YYYY-MM-DD HH:MM:SSZ": two words.
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ("n4", "failed", "0.2s", "v2"),
        ("n3", "failed", "0.2s", "v2"),
        ("n2", "passed", "0.2s", "v1"),
        ("n1", "passed", "0.2s", "v1"),
        ("n0", "passed", "0.2s", "v1"),
    ]
    assert rows[0][0] == f"{history.started[4]:%Y-%m-%d}"


def test_history_limit_reads_only_the_newest_runs_and_json_carries_everything(aws_env, history):
    code, out, err = ltr(history, "history", tid("test_b"), "--limit", "2", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert [(row["run"]["run_id"], row["outcome"]) for row in document] == [
        ("n4", "passed"),
        ("n3", "failed"),
    ]
    assert document[0]["test_id"] == tid("test_b")
    assert document[0]["run"]["app_version"] == "v2"
    assert document[0]["seconds"] == 0.25


def test_a_test_that_is_skipped_or_absent_shows_only_where_it_ran(aws_env, history):
    code, out, err = ltr(history, "history", "test_e")
    assert code == 0, err
    assert [r[2] for r in table_rows(out, "STARTED")] == ["n1", "n0"]
    code, out, err = ltr(history, "history", "test_d", "--limit", "1")
    assert code == 0, err
    assert [(r[2], r[3]) for r in table_rows(out, "STARTED")] == [("n4", "skipped")]


def test_an_unknown_test_names_the_query_and_the_fix(aws_env, history):
    code, out, err = ltr(history, "history", "ShopTest::test_zz")
    assert_one_line_error(code, err, "'ShopTest::test_zz'", "last 5 recorded runs", "--limit")
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["history", "test_a", "--limit", "0"], ["--limit 0", "from 1 to 400"]),
        (["history", "test_a", "--limit", "x"], ["--limit", "invalid int value"]),
        (["history", " "], ["TEST_ID", "file::class::name"]),
        (["history", "test_a", "--command", "migrate"], ["--command 'migrate'", "test, scribe"]),
        (["flaky", "--days", "0"], ["--days 0", "from 1 to 365"]),
        (["report", "n3", "--compare", "../n2"], ["'../n2'", "ltr runs"]),
        (["report", "n3", "--compare", "n9"], ["run 'n9'", "not in the history", "ltr runs"]),
        (["quarantine", "add", "test_b", "--owner", "qa"], ["--reason"]),
        (
            ["quarantine", "add", "test_b", "--reason", "r", "--owner", "qa", "--days", "31"],
            ["--days 31", "from 1 to 30", "add it again"],
        ),
        (["quarantine", "remove", "test_zz"], ["'test_zz' is not on the quarantine list"]),
        (["quarantine", "wipe"], ["invalid choice: 'wipe'"]),
    ],
)
def test_bad_input_is_one_line_naming_it_and_the_fix(aws_env, history, argv, fragments):
    code, out, err = ltr(history, *argv)
    assert_one_line_error(code, err, *fragments)
    assert out == ""


def test_a_command_without_history_says_so(aws_env, history):
    code, _, err = ltr(history, "history", "test_a", "--command", "scribe:generate")
    assert_one_line_error(
        code, err, "no run of scribe-generate on ltr/hist is recorded in the history yet"
    )


def test_ids_from_the_bucket_cannot_drive_the_terminal(aws_env, history):
    scope = HistoryScope("ltr", ENVIRONMENT, "api-export-markdown")
    history.record("x1", NOW - timedelta(hours=2), {"test_\x1b[2J.evil": "fail"}, scope=scope)
    code, out, err = ltr(history, "history", "evil", "--command", "api:export-markdown")
    assert code == 0, err
    assert "\x1b" not in out and "test_\\u001b[2J.evil" in out


def test_a_short_query_matching_several_tests_shows_each(aws_env, history):
    scope = HistoryScope("ltr", ENVIRONMENT, "api-export-markdown")
    history.record("x2", NOW - timedelta(hours=1), {"test_q": "pass"}, scope=scope)
    history.record(
        "x3", NOW - timedelta(minutes=30), {"test_q": "fail"}, scope=scope, case_class="Other"
    )
    code, out, err = ltr(history, "history", "test_q", "--command", "api:export-markdown")
    assert code == 0, err
    assert out.startswith("2 tests match 'test_q'; give more of the id to pick one")
    assert tid("test_q") in out and "tests/Feature/ShopTest.php::Other::test_q" in out


# --------------------------------------------------------------------------- ltr report --compare


def test_compare_shows_new_failures_and_fixed_tests(aws_env, history):
    code, out, err = ltr(history, "report", "n3", "--compare", "n2")
    assert code == 0, err
    assert out.startswith("# test on ltr/hist: n3 compared with n2\n")
    assert "2 new failures · 1 fixed · 0 still failing · 0 new tests · 0 disappeared" in out
    assert f"## New failures (2)\n\n- {tid('test_a')}\n- {tid('test_b')}\n" in out
    assert f"## Fixed (1)\n\n- {tid('test_c')}" in out
    assert "app version v2" in out and "app version v1" in out


def test_compare_as_json_lists_new_tests_and_disappeared_ones(aws_env, history):
    code, out, err = ltr(history, "report", "n2", "--compare", "n1", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["run"]["run_id"] == "n2" and document["other"]["run_id"] == "n1"
    assert document["new_failures"] == []
    assert document["fixed"] == [tid("test_b")]
    assert document["still_failing"] == [tid("test_c")]
    assert (document["new_tests"], document["new_test_sample"]) == (1, [tid("test_f")])
    assert (document["disappeared"], document["disappeared_sample"]) == (1, [tid("test_e")])


def test_compare_latest_with_an_older_run(aws_env, history):
    code, out, err = ltr(history, "report", "latest", "--compare", "n0", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["run"]["run_id"] == "n4"
    assert document["new_failures"] == [tid("test_a")]
    assert document["fixed"] == [tid("test_c")]


def test_compare_a_run_with_itself_says_nothing_changed(aws_env, history):
    code, out, err = ltr(history, "report", "n1", "--compare", "n1")
    assert code == 0, err
    assert "0 new failures · 0 fixed · 2 still failing · 0 new tests · 0 disappeared" in out
    assert "\nNo test changed its outcome.\n" in out


def test_compare_counts_exactly_beyond_the_names_it_lists(aws_env, history):
    scope = HistoryScope("ltr", ENVIRONMENT, "api-export-markdown")
    names = [f"test_many_{i:03d}" for i in range(250)]
    history.record("y1", NOW - timedelta(days=10), dict.fromkeys(names, "pass"), scope=scope)
    history.record("y2", NOW - timedelta(days=9), dict.fromkeys(names, "fail"), scope=scope)
    argv = ("report", "y2", "--compare", "y1", "--command", "api:export-markdown")
    code, out, err = ltr(history, *argv)
    assert code == 0, err
    assert "250 new failures · 0 fixed" in out
    assert "## New failures (250, 200 shown)" in out
    assert out.count(f"- {PREFIX}test_many_") == 200
    code, out, err = ltr(history, *argv, "--format", "json")
    document = json.loads(out)
    assert (document["new_failure_count"], len(document["new_failures"])) == (250, 200)


# --------------------------------------------------------------------------- ltr flaky


def test_flaky_lists_the_test_that_passed_and_failed_on_one_version(aws_env, history):
    code, out, err = ltr(history, "flaky")
    assert code == 0, err
    assert out.startswith("1 flaky test in the runs of test on ltr/hist from the last 14 days")
    [row] = table_rows(out, "FLIPS")
    assert row[:2] == ["4", "5"] and row[-1] == tid("test_b")
    assert "passed and failed on the same app version" in out
    code, out, err = ltr(history, "flaky", "--format", "json")
    assert code == 0, err
    [item] = json.loads(out)
    assert (item["test_id"], item["flips"], item["rule"]) == (tid("test_b"), 4, "same_version")


def test_flaky_days_narrows_the_window(aws_env, history):
    # Only n4 (started a day and an hour ago) is within 2 days: nothing to compare.
    code, out, err = ltr(history, "flaky", "--days", "2")
    assert code == 0, err
    assert out.strip() == "no flaky tests in the runs of test on ltr/hist from the last 2 days"


def test_flaky_is_most_flips_first(aws_env, history):
    scope = HistoryScope("ltr", ENVIRONMENT, "scribe-generate")
    rows = {"test_m": "pass fail pass fail pass fail", "test_n": "pass fail pass pass pass pass"}
    for night in range(6):
        started = NOW - timedelta(days=6 - night)
        outcomes = {name: row.split()[night] for name, row in rows.items()}
        history.record(f"f{night}", started, outcomes, "v1", scope=scope)
    code, out, err = ltr(history, "flaky", "--command", "scribe:generate", "--format", "json")
    assert code == 0, err
    assert [(i["test_id"], i["flips"]) for i in json.loads(out)] == [
        (tid("test_m"), 5),
        (tid("test_n"), 2),
    ]


# --------------------------------------------------------------------------- ltr quarantine


def test_quarantine_add_list_and_remove_round_trip(aws_env, history):
    code, out, err = ltr(
        history,
        "quarantine",
        "add",
        "ShopTest::test_b",
        "--reason",
        "races the queue worker",
        "--owner",
        "qa-team",
        "--days",
        "7",
    )
    assert code == 0, err
    assert out.startswith(f"quarantined {tid('test_b')} until ")
    # What the report processor reads back: the full id, 7 days from now.
    [entry] = list_quarantine(history.store, "ltr", ENVIRONMENT).entries
    assert (entry.test_id, entry.owner, entry.reason) == (
        tid("test_b"),
        "qa-team",
        "races the queue worker",
    )
    added = datetime.fromisoformat(entry.added.replace("Z", "+00:00"))
    expires = datetime.fromisoformat(entry.expires.replace("Z", "+00:00"))
    assert expires - added == timedelta(days=7)

    code, out, err = ltr(history, "quarantine", "list")
    assert code == 0, err
    [row] = table_rows(out, "STATE")
    assert row[0] == "active" and row[-1] == tid("test_b") and "qa-team" in row
    code, out, err = ltr(history, "quarantine", "list", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["entries"][0]["state"] == "active"

    code, out, err = ltr(history, "quarantine", "remove", "test_b")
    assert code == 0, err
    assert out == f"removed {tid('test_b')} from the quarantine list: it counts again\n"
    code, out, err = ltr(history, "quarantine", "list")
    assert (code, out) == (0, "the quarantine list of ltr/hist is empty\n")


def test_an_entry_added_by_ltr_protects_the_test_in_the_next_report(aws_env, history):
    code, _, err = ltr(history, "quarantine", "add", tid("test_b"), "--reason", "r", "--owner", "o")
    assert code == 0, err
    outcomes = {name: "pass" for name in ("test_a", "test_c", "test_d", "test_f")}
    # Started after the entry was added: protection is judged at the run's start time.
    started = datetime.now(UTC) + timedelta(seconds=1)
    try:
        section = history.record("n5", started, {**outcomes, "test_b": "fail"})
        assert section.status == "passed"  # the quarantined failure does not count
        assert [(q.test_id, q.state, q.outcome) for q in section.quarantine] == [
            (tid("test_b"), "active", "failed")
        ]
        assert section.counts.new_failures == 0
    finally:
        run_ltr("quarantine", "remove", "test_b", "--config", str(history.config_path))
        # Out of the history again (the index is rebuilt from the remaining run.json objects).
        for key in list(history.store.list_keys(history.scope.prefix)):
            if "-n5/" in key or key.endswith("/index.json"):
                history.store.delete(key)


def test_quarantine_add_needs_an_unambiguous_id(aws_env, history):
    scope = HistoryScope("ltr", ENVIRONMENT, "api-export-markdown")
    info = RunInfo("x9", datetime.now(UTC), "v2", "img-1", "failed")
    session = HistorySession.open(history.store, scope, info, HistoryConfig())
    for case_class in (CLASS, "Tests\\Feature\\OtherTest"):
        session.on_case(FILE, case_class, "test_w", OUTCOMES["fail"], 0.1, False)
    session.finish({})
    code, _, err = ltr(
        history,
        *("quarantine", "add", "test_w", "--reason", "r", "--owner", "o"),
        *("--command", "api:export-markdown"),
    )
    assert_one_line_error(code, err, "'test_w' matches 2 tests of the latest run", "OtherTest")
    # A name that did not run lately is refused, unless it is a full id.
    code, _, err = ltr(history, "quarantine", "add", "test_zz", "--reason", "r", "--owner", "o")
    assert_one_line_error(code, err, "no test matching 'test_zz' ran in the latest recorded run")
    full = "tests/Unit/NewTest.php::Tests.Unit.NewTest::test_new"
    code, out, err = ltr(history, "quarantine", "add", full, "--reason", "r", "--owner", "o")
    assert code == 0, err
    code, _, err = ltr(history, "quarantine", "remove", full)
    assert code == 0, err


def test_quarantine_list_flags_expired_and_soon_expiring_entries(aws_env, history):
    store = history.store
    add_to_quarantine(
        store, "ltr", ENVIRONMENT, tid("test_c"), "old", "ops", NOW - timedelta(days=40), 10
    )
    add_to_quarantine(
        store, "ltr", ENVIRONMENT, tid("test_d"), "soon", "dev", NOW - timedelta(days=9), 10
    )
    try:
        code, out, err = ltr(history, "quarantine", "list")
        assert code == 0, err
        states = {row[-1]: " ".join(row[:5]) for row in table_rows(out, "STATE")}
        assert states[tid("test_c")].startswith("expired")
        assert states[tid("test_d")].startswith("active (expires within 3 days)")
        assert "1 expired: they protect nothing" in out
    finally:
        store.delete(quarantine_key("ltr", ENVIRONMENT))


def test_invalid_entries_in_the_bucket_are_named_not_fatal(aws_env, history):
    key = quarantine_key("ltr", ENVIRONMENT)
    document = {"version": 1, "entries": [{"test_id": "x", "reason": "", "owner": "o"}]}
    history.store.put(key, json.dumps(document).encode())
    try:
        code, out, err = ltr(history, "quarantine", "list")
        assert code == 0, err
        assert "the quarantine list of ltr/hist is empty" in out
        assert "invalid quarantine entry ignored: reason is required" in out
    finally:
        history.store.delete(key)
