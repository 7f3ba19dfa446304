"""Units of the history core: ids, rows, digests, diff, flakiness, records, quarantine, message."""

from __future__ import annotations

import io
from array import array
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report_processor.history import keys
from report_processor.history.analysis import ABSENT, Observations, flaky, only_in_each
from report_processor.history.keys import HistoryKeyError, HistoryScope
from report_processor.history.quarantine import (
    QuarantineError,
    new_entry,
    parse_quarantine,
    validate_entry,
)
from report_processor.history.records import (
    HistoryConfig,
    HistoryConfigError,
    RunRecord,
    failed_wholesale,
    parse_index,
    run_info_from_manifest,
    upsert,
)
from report_processor.history.rows import (
    ERROR,
    FAILED,
    FLAKY_BIT,
    PASSED,
    SKIPPED,
    Digest,
    HistoryDataError,
    RunRecorder,
    dump_digest,
    iter_rows,
    load_digest,
    resolve_names,
)
from report_processor.history.section import (
    Counts,
    HistorySection,
    RunRef,
    headline,
    notification,
    subject,
)
from report_processor.history.testid import (
    HASH_MASK,
    id_hash,
    matches,
    normalise_file,
    normalise_name,
    stable_test_id,
)

# -- stable test id -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("/var/task/app/tests/Unit/ATest.php", "tests/Unit/ATest.php"),
        ("C:\\ci\\build-17\\app\\tests\\Unit\\ATest.php", "tests/Unit/ATest.php"),
        ("/tmp/ltr-run-9f3/app/tests/Unit/ATest.php", "tests/Unit/ATest.php"),
        ("./tests//Unit/ATest.php", "tests/Unit/ATest.php"),
        ("tests/Unit/ATest.php", "tests/Unit/ATest.php"),
        ("/opt/lib/Thing.php", "/opt/lib/Thing.php"),  # no tests folder: kept as is
        (None, ""),
    ],
)
def test_file_paths_are_normalised_so_shards_and_checkouts_agree(file, expected):
    assert normalise_file(file) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test_x with data set #1", "test_x with data set #1"),
        ("test_x with data set #12 (1, 'a')", "test_x with data set #12"),
        ('test_x with data set "named"', 'test_x with data set "named"'),
        ('test_x with data set "named" (true)', 'test_x with data set "named"'),
        ("  test_plain  ", "test_plain"),
    ],
)
def test_data_set_names_stay_distinct_and_drop_their_values(name, expected):
    assert normalise_name(name) == expected


def test_the_same_test_has_the_same_id_whatever_the_phpunit_version_or_machine():
    nine = stable_test_id("/var/task/app/tests/U/ATest.php", "Tests.U.ATest", "test_a")
    eleven = stable_test_id("C:\\w\\app\\tests\\U\\ATest.php", "Tests\\U\\ATest", "test_a")
    assert nine == eleven == "tests/U/ATest.php::Tests.U.ATest::test_a"
    assert stable_test_id(None, "pkg.TestX", "test_y") == "pkg.TestX::test_y"
    assert id_hash(nine) == id_hash(eleven) and id_hash(nine) & ~HASH_MASK == 0


def test_ltr_lookups_match_on_boundaries_only():
    full = "tests/U/ATest.php::Tests.U.ATest::test_a"
    assert matches("ATest::test_a", full) and matches("Tests\\U\\ATest::test_a", full)
    assert matches("test_a", full) and matches(full, full)
    assert not matches("est_a", full) and not matches("", full)


@given(st.text(alphabet="ab/\\.:_ ", max_size=30))
def test_normalising_a_file_twice_changes_nothing(raw):
    once = normalise_file(raw)
    assert normalise_file(once) == once
    assert "\\" not in once


# -- recorder, rows, digest -----------------------------------------------------------------


def record(cases):
    recorder = RunRecorder()
    for case in cases:
        recorder.on_case(*case)
    return recorder.finish()


def test_the_recorder_counts_sorts_and_keeps_failing_names():
    run = record(
        [
            ("/var/task/app/tests/ATest.php", "Tests\\ATest", "b", FAILED, 0.5, False),
            ("/var/task/app/tests/ATest.php", "Tests\\ATest", "a", PASSED, 0.25, True),
            ("/var/task/app/tests/ATest.php", "Tests\\ATest", "c", SKIPPED, 0.0, False),
            ("/var/task/app/tests/BTest.php", "Tests\\BTest", "a", ERROR, 1.0, False),
        ]
    )
    assert (run.cases, run.outcomes, run.flaky, run.duplicates) == (4, (1, 1, 1, 1), 1, 0)
    assert list(run.digest.hashes) == sorted(run.digest.hashes)
    failing = {name: run.digest.code_of(id_hash(name)) for name in run.names.values()}
    assert failing == {  # failing and flaky-within-run tests keep their names
        "tests/ATest.php::Tests.ATest::b": FAILED,
        "tests/ATest.php::Tests.ATest::a": PASSED | FLAKY_BIT,
        "tests/BTest.php::Tests.BTest::a": ERROR,
    }
    flaky_id = id_hash("tests/ATest.php::Tests.ATest::a")
    assert run.digest.code_of(flaky_id) == PASSED | FLAKY_BIT
    assert len(run.failing) == 3  # failed, error, flaky within the run
    rows = list(iter_rows(run.rows))
    assert rows[0] == ("tests/ATest.php::Tests.ATest::b", FAILED, 500)
    assert rows[-1] == ("tests/BTest.php::Tests.BTest::a", ERROR, 1000)


def test_a_repeated_id_counts_once_with_its_worst_outcome():
    case = ("f.php", "C", "t", PASSED, 0.1, False)
    run = record([case, ("f.php", "C", "t", FAILED, 0.1, False), case])
    assert run.duplicates == 2 and len(run.digest) == 1
    assert run.digest.code_of(id_hash("f.php::C::t")) == FAILED


names_strategy = st.lists(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=20,
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda text: text.strip(),
)


@settings(max_examples=60)
@given(names_strategy)
def test_rows_round_trip_any_name_and_resolve_by_hash(raw_names):
    raw_names = [name for name in raw_names if name.strip() and " with data set " not in name]
    run = record([("t.php", "C", name, PASSED, 0.001, False) for name in raw_names])
    ids = [f"t.php::C::{name.strip()}" for name in raw_names]
    assert [row[0] for row in iter_rows(run.rows)] == ids
    run.rows.seek(0)
    assert resolve_names(run.rows, {id_hash(i) for i in ids}) == {id_hash(i): i for i in ids}


@given(st.lists(st.integers(0, 2**61 - 1), unique=True, max_size=300))
def test_digests_round_trip(values):
    hashes = array("Q", sorted(value << 3 for value in values))
    digest = Digest(hashes, bytes(index % 8 for index in range(len(hashes))))
    loaded = load_digest(dump_digest(digest))
    assert loaded.hashes == digest.hashes and bytes(loaded.codes) == bytes(digest.codes)


def test_a_corrupt_digest_or_rows_object_is_refused_with_its_name():
    with pytest.raises(HistoryDataError, match="x.bin: not a history digest"):
        load_digest(b"nonsense", "x.bin")
    good = dump_digest(Digest(array("Q", [8]), b"\x00"))
    with pytest.raises(HistoryDataError, match="do not hold"):
        load_digest(good[:-1], "y.bin")
    with pytest.raises(HistoryDataError, match="not gzip"):
        list(iter_rows(io.BytesIO(b"plain text\n"), "r.gz"))


# -- diff and flakiness ---------------------------------------------------------------------


@settings(max_examples=80)
@given(
    st.sets(st.integers(0, 5000), max_size=1500),
    st.sets(st.integers(0, 5000), max_size=1500),
    st.integers(0, 20),
)
def test_only_in_each_is_the_set_difference(left, right, sample):
    a = array("Q", sorted(v << 3 for v in left))
    b = array("Q", sorted(v << 3 for v in right))
    count_a, sample_a, count_b, sample_b = only_in_each(a, b, sample)
    assert count_a == len(left - right) and count_b == len(right - left)
    assert sample_a == sorted(v << 3 for v in left - right)[:sample]
    assert sample_b == sorted(v << 3 for v in right - left)[:sample]


NOW = datetime(2026, 11, 20, tzinfo=UTC)


def runs(versions):
    """RunRecords newest first, one a day back from NOW."""
    return tuple(
        RunRecord(f"2026111{index}T000000000Z-r{index}", f"r{index}",
                  (NOW - timedelta(days=index)).isoformat(), "passed", app_version=version)
        for index, version in enumerate(versions)
    )  # fmt: skip


def verdicts(codes_newest_first, versions, config=None):
    obs = Observations((8,), runs(versions), tuple(bytes([c]) for c in codes_newest_first))
    return flaky(obs, config or HistoryConfig(), NOW)


def test_flaky_same_version_pass_and_fail():
    [verdict] = verdicts([FAILED, PASSED], ["v1", "v1"])
    assert (verdict.rule, verdict.app_version, verdict.flips) == ("same_version", "v1", 1)


def test_not_flaky_when_the_outcome_changes_with_the_version():
    assert verdicts([FAILED, PASSED], ["v2", "v1"]) == []


def test_not_flaky_without_app_versions_unless_it_flips_often():
    assert verdicts([FAILED, PASSED, FAILED, PASSED], [None] * 4) == []
    config = HistoryConfig(flip_min_runs=5, flip_min_flips=3)
    codes = [FAILED, PASSED, FAILED, PASSED, PASSED]
    [verdict] = verdicts(codes, ["v5", "v4", "v3", "v2", "v1"], config)
    assert (verdict.rule, verdict.flips, verdict.runs) == ("flips", 3, 5)
    assert verdicts(codes[:4], ["v4", "v3", "v2", "v1"], config) == []  # too few runs


def test_skips_and_absences_are_not_outcomes_and_a_rerun_counts():
    assert verdicts([SKIPPED, PASSED, ABSENT, FAILED], ["v1"] * 4)[0].flips == 1
    assert verdicts([SKIPPED, ABSENT], ["v1"] * 2) == []
    [verdict] = verdicts([PASSED | FLAKY_BIT], [None])
    assert verdict.rule == "rerun"


def test_outcomes_older_than_the_window_do_not_pair():
    config = HistoryConfig(flaky_days=3)
    assert (
        verdicts([FAILED, PASSED, PASSED, PASSED, PASSED], ["v1"] * 5, config)[0].app_version
        == "v1"
    )
    assert verdicts([FAILED, ABSENT, ABSENT, ABSENT, PASSED], ["v1"] * 5, config) == []


# -- records and keys -----------------------------------------------------------------------


def test_wholesale_failure_rule():
    config = HistoryConfig(wholesale_share=0.5, wholesale_min_tests=10)
    assert failed_wholesale(0, 0, 0, "error", config) == "the run ended 'error' before any test ran"
    assert failed_wholesale(0, 0, 0, None, config) == "no test ran"
    assert failed_wholesale(100, 0, 51, "failed", config) is not None
    assert failed_wholesale(100, 0, 50, "failed", config) is None
    assert failed_wholesale(9, 0, 9, "failed", config) is None  # too small to call an outage
    assert failed_wholesale(100, 80, 11, "failed", config) is not None  # share of runnable


def test_config_from_env_and_its_errors():
    config = HistoryConfig.from_env({"HISTORY_FLAKY_DAYS": "7", "HISTORY_WHOLESALE_SHARE": "0.8",
                                     "HISTORY_APP_ROOTS": "/a:/b"})  # fmt: skip
    assert (config.flaky_days, config.wholesale_share, config.app_roots) == (7, 0.8, ("/a", "/b"))
    with pytest.raises(HistoryConfigError, match="HISTORY_FLAKY_DAYS='x'"):
        HistoryConfig.from_env({"HISTORY_FLAKY_DAYS": "x"})
    with pytest.raises(HistoryConfigError, match="flip_min_runs"):
        HistoryConfig(flip_runs=3, flip_min_runs=5)
    with pytest.raises(HistoryConfigError, match="wholesale_share"):
        HistoryConfig(wholesale_share=0)


def test_index_keeps_runs_by_start_time_and_drops_junk():
    good = RunRecord("20261101T000000000Z-a", "a", "2026-11-01T00:00:00Z", "passed")
    later = RunRecord("20261102T000000000Z-b", "b", "2026-11-02T00:00:00Z", "failed")
    document = upsert(upsert(None, later, 10), good, 10)
    document["runs"].append({"run_key": "../../etc", "run_id": "x", "started_at": "z"})
    document["runs"].append("junk")
    document["runs"].append({**good.to_json(), "tests": "many"})
    index = parse_index(document)
    assert [run.run_id for run in index.runs] == ["a", "b"]
    assert index.previous(later.run_key) == good and index.previous(good.run_key) is None
    assert [run.run_id for run in parse_index(upsert(document, later, 1)).runs] == ["b"]


def test_manifest_fields_are_untrusted():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    info = run_info_from_manifest(
        {"started_at": 5, "app_version": ["x"], "status": "failed"}, "r", now
    )
    assert (info.run_id, info.started_at, info.app_version, info.runner_status) == (
        "r",
        now,
        None,
        "failed",
    )
    info = run_info_from_manifest({"run_id": "m", "started_at": "2026-10-31T02:00:00Z"}, "r", now)
    assert info.run_id == "m" and info.started_at == datetime(2026, 10, 31, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("project", "environment", "slug"),
    [
        ("../x", "prod", "test"),
        ("p", "a/b", "test"),
        ("p", "prod", "Test"),
        ("p", "prod", "quarantine.json"),
        ("p", "prod", ".."),
    ],
)
def test_unsafe_key_segments_are_refused(project, environment, slug):
    with pytest.raises(HistoryKeyError):
        HistoryScope(project, environment, slug)


def test_run_keys_sort_by_start_time_and_never_carry_raw_ids():
    early = keys.make_run_key(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "run-1")
    assert early == "20260102T030405678Z-run-1"
    odd = keys.make_run_key(datetime(2026, 1, 2, tzinfo=UTC), "../../x y")
    assert "/" not in odd and ".." not in odd and odd < "20260103"
    scope = HistoryScope("shop", "prod", "test")
    record = keys.run_record_key(scope, early)
    assert record == "history/shop/prod/test/runs/20260102T030405678Z-run-1/run.json"
    assert keys.run_key_from_record_key(scope, record) == early
    assert keys.quarantine_key("shop", "prod") == "history/shop/prod/quarantine.json"
    assert keys.index_key(scope) == "history/shop/prod/test/index.json"


# -- quarantine -----------------------------------------------------------------------------


def test_quarantine_entries_are_validated_and_expire():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    entry = new_entry("T::x", "flaky on CI", "ana", now, days=30)
    assert entry.state(now) == "active"
    assert entry.state(now + timedelta(days=30)) == "expired"
    assert entry.state(now - timedelta(seconds=1)) == "pending"
    for kwargs, message in [
        ({"days": 0}, "1 to 30 days"),
        ({"days": 31}, "1 to 30 days"),
        ({"reason": " "}, "reason is required"),
        ({"owner": "a\nb"}, "control characters"),
    ]:
        args = {"test_id": "T::x", "reason": "r", "owner": "o", "now": now, "days": 5} | kwargs
        with pytest.raises(QuarantineError, match=message):
            new_entry(**args)
    too_long = {**entry.__dict__, "expires": (now + timedelta(days=31)).isoformat()}
    with pytest.raises(QuarantineError, match="at most 30 days"):
        validate_entry(too_long)
    listed = parse_quarantine({"entries": [entry.__dict__, too_long, "junk"]})
    assert [e.test_id for e in listed.entries] == ["T::x"] and len(listed.problems) == 2
    assert listed.active(now) == {id_hash("T::x"): entry}


# -- headline, subject, notification --------------------------------------------------------


def section(**overrides):
    one = RunRef("r1", "20261101T000000000Z-r1", "2026-11-01T00:00:00.000Z")
    base = dict(
        run=RunRef("r2", "20261102T000000000Z-r2", "2026-11-02T00:00:00.000Z"),
        status="failed", previous=one, previous_status="failed", baseline=one,
        superseded=False, wholesale_reason=None, tests=1000, tests_before=1000,
        tests_dropped=False, pass_rate=0.974,
        counts=Counts(failing=6, new_failures=2, fixed=1, still_failing=4, flaky=3),
    )  # fmt: skip
    return HistorySection(**(base | overrides))


def test_headline_leads_with_the_diff():
    assert headline(section()) == "2 new failures · 1 fixed · 4 still failing · 3 flaky"
    dropped = section(tests=900, tests_dropped=True)
    assert headline(dropped).endswith("· ⚠ tests dropped 1,000 → 900")


def test_the_subject_from_the_issue_and_its_limit():
    assert (
        subject(section(), "test", "prod") == "[ltr] test on prod: 2 new failures, pass rate 97.4 %"
    )


@given(st.text(max_size=300), st.text(max_size=300), st.integers(0, 10**9))
def test_subjects_are_printable_ascii_and_at_most_100_characters(command, environment, count):
    text = subject(section(counts=Counts(new_failures=count)), command, environment)
    assert len(text) <= 100 and all(32 <= ord(char) < 127 for char in text)
    assert "pass rate" in text


@pytest.mark.parametrize(
    ("overrides", "sent"),
    [
        ({"status": "passed", "previous_status": "passed", "counts": Counts()}, False),
        ({"status": "passed", "previous_status": "failed", "counts": Counts()}, True),
        (
            {
                "status": "failed",
                "previous_status": "failed",
                "counts": Counts(failing=3, still_failing=3),
            },
            False,
        ),
        ({"status": "failed", "previous_status": "failed"}, True),
        ({"status": "failed", "previous_status": "passed", "counts": Counts(failing=1)}, True),
        ({"superseded": True}, False),
        (
            {"previous": None, "previous_status": None, "status": "passed", "counts": Counts()},
            False,
        ),
        ({"previous": None, "previous_status": None, "status": "failed"}, True),
    ],
)
def test_one_message_only_when_the_status_changed_or_there_are_new_failures(overrides, sent):
    message = notification(section(**overrides), "shop", "test", "prod")
    assert (message is not None) == sent
    if message is not None:
        assert set(message.attributes) == {"project", "environment", "command", "status"}
        assert message.attributes["project"]["StringValue"] == "shop"


# -- the diff against a naive reference -----------------------------------------------------

outcome_maps = st.dictionaries(
    st.integers(0, 60), st.sampled_from([PASSED, SKIPPED, FAILED, ERROR, PASSED | FLAKY_BIT])
)


@settings(max_examples=150)
@given(outcome_maps, outcome_maps)
def test_the_diff_agrees_with_a_naive_set_based_classification(before, now):
    from report_processor.history.analysis import diff

    def digest_of(outcomes):
        run = record(
            [
                ("f.php", "C", f"t{n}", code & 3, 0.0, bool(code & FLAKY_BIT))
                for n, code in outcomes.items()
            ]
        )
        return run.digest, run.failing

    def failing(code):
        return code & 3 in (FAILED, ERROR)

    (cur, cur_failing), (prev, prev_failing) = digest_of(now), digest_of(before)
    result = diff(cur, cur_failing, prev, prev_failing, sample=100)
    h = {n: id_hash(f"f.php::C::t{n}") for n in set(before) | set(now)}
    expect_new = {
        h[n] for n, c in now.items() if failing(c) and not (n in before and failing(before[n]))
    }
    expect_still = {
        h[n] for n, c in now.items() if failing(c) and n in before and failing(before[n])
    }
    expect_fixed = {
        h[n] for n, c in before.items() if failing(c) and n in now and now[n] & 3 == PASSED
    }
    assert set(result.new_failures) == expect_new and result.new_failure_count == len(expect_new)
    assert set(result.still_failing) == expect_still
    assert set(result.fixed) == expect_fixed and result.fixed_count == len(expect_fixed)
    assert result.new_tests == len(set(now) - set(before))
    assert set(result.disappeared_sample) == {h[n] for n in set(before) - set(now)}


def test_a_classes_file_with_junk_seconds_keeps_the_usable_entries():
    import json

    from report_processor.history.durations import parse_classes

    document = json.loads(
        '{"classes": {"A": 1.5, "B": -1, "C": "2", "D": true, "E": 1' + "0" * 400 + "}}"
    )
    # E is an integer too large for a float: read as junk, not an OverflowError.
    assert parse_classes(document) == {"A": 1.5}
    assert parse_classes({"classes": {"A": float("nan"), "B": float("inf"), "C": 3}}) == {"C": 3.0}
