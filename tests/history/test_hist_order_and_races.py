"""Previous run by start time (not arrival), redelivery, index updates that race, and stored
state that is missing or damaged."""

from __future__ import annotations

import json
import threading

import pytest

from report_processor.history import keys
from report_processor.history.records import HistoryConfig, RunInfo, parse_index
from report_processor.history.rows import FAILED, PASSED
from report_processor.history.session import HistorySession, load_index
from report_processor.history.storage import ConflictError, MemoryStore, update_json
from tests.history.helpers import CLASS, FILE, SCOPE, START, Night, run_night

CONFIG = HistoryConfig(wholesale_min_tests=2)


def test_a_late_event_for_an_earlier_run_never_becomes_previous_for_a_newer_run():
    store = MemoryStore()
    n1 = Night(1, "v1", {"a": "pass", "b": "pass"})
    n2 = Night(2, "v1", {"a": "fail", "b": "pass"})
    n3 = Night(3, "v2", {"a": "pass", "b": "fail"})
    n4 = Night(4, "v3", {"a": "pass", "b": "pass"})
    run_night(store, n1, CONFIG)
    three = run_night(store, n3, CONFIG)  # arrives before n2
    assert three.previous is not None and three.previous.run_id == "n1"
    two = run_night(store, n2, CONFIG)  # late: compared with n1 (started before it), not n3
    assert two.previous is not None and two.previous.run_id == "n1"
    assert two.superseded
    assert two.notification is None  # stale news: n3 already reported
    assert {t.test_id.rsplit("::", 1)[1] for t in two.new_failures} == {"a"}
    four = run_night(store, n4, CONFIG)  # n2 arrived last, but n3 started last
    assert four.previous is not None and four.previous.run_id == "n3"
    assert {f.rsplit("::", 1)[1] for f in four.fixed} == {"b"}
    assert [run.run_id for run in load_index(store, SCOPE).runs] == ["n1", "n2", "n3", "n4"]


def test_a_redelivered_report_replaces_its_entry_instead_of_adding_one():
    store = MemoryStore()
    night = Night(1, "v1", {"a": "pass"})
    run_night(store, night, CONFIG)
    again = run_night(store, night, CONFIG)
    assert [run.run_id for run in load_index(store, SCOPE).runs] == ["n1"]
    assert again.previous is None


def test_the_index_is_rebuilt_from_run_records_when_it_is_missing():
    store = MemoryStore()
    run_night(store, Night(1, "v1", {"a": "pass"}), CONFIG)
    run_night(store, Night(2, "v1", {"a": "pass"}), CONFIG)
    store.delete(keys.index_key(SCOPE))
    section = run_night(store, Night(3, "v1", {"a": "fail"}), CONFIG)
    assert section.previous is not None and section.previous.run_id == "n2"
    assert [run.run_id for run in load_index(store, SCOPE).runs] == ["n1", "n2", "n3"]


def _append(item: str):
    def change(document):
        items = list(document["items"]) if isinstance(document, dict) else []
        return {"items": sorted([*items, item])}

    return change


def test_two_writers_that_read_the_same_index_both_keep_their_entry():
    """Writer B commits between A's read and A's conditional put: A must retry, not overwrite."""
    store = MemoryStore()
    update_json(store, "k.json", _append("first"), sleep=lambda _s: None)
    raced = []

    def b_wins_the_race(key: str) -> None:
        if not raced:
            raced.append(key)
            store.before_put = None
            update_json(store, key, _append("b"), sleep=lambda _s: None)

    store.before_put = b_wins_the_race
    update_json(store, "k.json", _append("a"), sleep=lambda _s: None)
    assert json.loads(store.objects["k.json"].data) == {"items": ["a", "b", "first"]}
    assert store.conflicts == 1


def test_two_first_writers_of_a_missing_index_both_keep_their_entry():
    store = MemoryStore()
    raced = []

    def b_creates_it_first(key: str) -> None:
        if not raced:
            raced.append(key)
            store.before_put = None
            update_json(store, key, _append("b"), sleep=lambda _s: None)

    store.before_put = b_creates_it_first
    update_json(store, "k.json", _append("a"), sleep=lambda _s: None)
    assert json.loads(store.objects["k.json"].data) == {"items": ["a", "b"]}


def test_many_threads_racing_lose_nothing():
    store = MemoryStore()
    barrier = threading.Barrier(8)

    def writer(number: int) -> None:
        barrier.wait()
        update_json(store, "k.json", _append(f"w{number}"), attempts=50)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(store.objects["k.json"].data)["items"] == [f"w{n}" for n in range(8)]


def test_a_writer_that_always_loses_gives_up_with_a_clear_error():
    store = MemoryStore()
    update_json(store, "k.json", _append("x"))

    def someone_else_always_writes(key: str) -> None:
        store.objects[key] = store.objects[key].__class__(b'{"items":[]}', f'"{id(object())}"')

    store.before_put = someone_else_always_writes
    with pytest.raises(ConflictError, match="lost a race"):
        update_json(store, "k.json", _append("y"), attempts=3, sleep=lambda _s: None)


def test_two_reports_finishing_together_both_land_in_the_index():
    """Two sessions of different runs: the second's index write races the first's."""
    store = MemoryStore()
    from report_processor.history.records import RunInfo
    from report_processor.history.session import HistorySession
    from tests.history.helpers import CLASS, FILE

    sessions = []
    for night in (Night(1, "v1", {"a": "pass"}), Night(2, "v1", {"a": "fail"})):
        info = RunInfo(night.run_id, night.started_at, night.version)
        session = HistorySession.open(store, SCOPE, info, CONFIG)
        session.on_case(FILE, CLASS, "a", 0, 0.1)
        sessions.append(session)
    index_key = keys.index_key(SCOPE)

    def other_finishes_first(key: str) -> None:
        if key == index_key:
            store.before_put = None
            sessions[1].finish()

    store.before_put = other_finishes_first
    sessions[0].finish()
    runs = parse_index(json.loads(store.objects[index_key].data)).runs
    assert [run.run_id for run in runs] == ["n1", "n2"]


def test_counts_stay_exact_when_lists_are_bounded():
    store = MemoryStore()
    config = HistoryConfig(wholesale_min_tests=100, max_listed=2, max_tracked_failures=3)
    names_ = [f"t{n:02d}" for n in range(12)]
    run_night(store, Night(1, "v1", dict.fromkeys(names_, "pass")), config)
    tonight = dict.fromkeys(names_, "fail") | {f"new{n}": "pass" for n in range(5)}
    section = run_night(store, Night(2, "v2", tonight), config)
    assert section.counts.new_failures == 12 and section.counts.new_tests == 5
    assert len(section.new_failures) == 2 and len(section.new_tests) == 2
    # The listed ones are the first by name among those kept, each with its own history.
    assert all(t.of_runs == 2 and t.failed_runs == 1 for t in section.new_failures)
    after = run_night(store, Night(3, "v3", dict.fromkeys(names_, "pass")), config)
    assert after.counts.fixed == 12 and len(after.fixed) == 2
    assert not any(name.startswith("#") for name in after.fixed)  # listed ones carry their names


def test_the_core_imports_no_aws_sdk():
    """Pure core: only s3.py (the shell) may import boto3/botocore."""
    import ast
    from pathlib import Path

    import report_processor.history as package

    for path in Path(package.__file__).parent.glob("*.py"):
        if path.name == "s3.py":
            continue
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not imported & {"boto3", "botocore", "aws_lambda_powertools"}, path.name


@pytest.mark.parametrize(
    "damage",
    [
        lambda store, run_key: store.delete(keys.digest_key(SCOPE, run_key)),
        lambda store, run_key: store.put(keys.failing_key(SCOPE, run_key), b"not a digest"),
    ],
    ids=["digest deleted", "failing set damaged"],
)
def test_an_unreadable_baseline_means_no_diff_and_a_note(damage):
    store = MemoryStore()
    run_night(store, Night(1, "v1", {"a": "pass", "b": "pass"}), CONFIG)
    damage(store, load_index(store, SCOPE).runs[0].run_key)
    section = run_night(store, Night(2, "v1", {"a": "fail", "b": "pass"}), CONFIG)
    assert section.previous is not None and section.previous.run_id == "n1"
    assert section.baseline is None and section.tests_before is None
    assert section.new_failures == () and section.counts.new_failures == 0
    assert "the history of run n1 is unreadable: no diff" in section.notes


def test_a_test_id_repeated_in_one_run_is_noted_and_counted_once():
    store = MemoryStore()
    session = HistorySession.open(store, SCOPE, RunInfo("n1", START), CONFIG)
    for outcome in (PASSED, FAILED, PASSED):
        session.on_case(FILE, CLASS, "a", outcome, 0.1)
    session.on_case(FILE, CLASS, "b", PASSED, 0.1)
    section = session.finish()
    assert section.tests == 2 and section.duplicates == 2 and section.counts.failing == 1
    assert section.notes == (
        "2 testcases repeat an earlier test id in this run; each id counts once in history "
        "(its worst outcome)",
    )
    assert [run.run_id for run in load_index(store, SCOPE).runs] == ["n1"]
