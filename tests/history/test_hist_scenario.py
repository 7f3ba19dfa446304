"""A scripted sequence of eight nights, classified exactly as intended, test by test.

Nights are daily at 02:00 UTC. App versions: v1 (nights 1-2), v2 (3-5), v3 (6), v4 (7-8).
- regress: breaks on night 3 (v2), fixed on night 6 (v3): never flaky (changes with versions).
- broken: fails every night ("failing since n1", lower bound).
- old_name -> new_name: renamed on night 3 (one new test, one disappeared).
- removed: gone from night 5 (disappeared; the test count drops).
- outage: night 4, every test errors: failed wholesale, left out of flakiness, not a baseline.
- quarantined: fails every night; quarantined from night 2 + 1 h for 30 days: protected from n3.
- expiring: fails until night 6, passes from night 7; quarantined before night 1 for 4 days:
  protected on nights 1-4, expired (and counted again) from night 5.
- wobbly: v2: passes n3, fails n5, passes n6: flaky (same version) from night 5.
- rerun: passes on a rerun (flakyFailure) on night 5: flaky within the run.
- provider with data set #0/#1: #1 fails on night 6 only (a new failure with its message).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from report_processor.history.queries import (
    add_to_quarantine,
    find_test_ids,
    flaky_tests,
    outcomes_of_test,
)
from report_processor.history.records import HistoryConfig
from report_processor.history.storage import MemoryStore
from tests.history.helpers import SCOPE, START, Night, names, run_night, short, tid

P, F, E, FL = "pass", "fail", "error", "flaky"
BASE = {
    "ok": P,
    "regress": P,
    "broken": F,
    "old_name": P,
    "removed": P,
    "quarantined": F,
    "expiring": F,
    "wobbly": P,
    "rerun": P,
    "provider with data set #0": P,
    "provider with data set #1": P,
}


def nights() -> list[Night]:
    n1 = dict(BASE)
    n2 = dict(BASE)
    n3 = {k: v for k, v in BASE.items() if k != "old_name"} | {"new_name": P, "regress": F}
    n4 = dict.fromkeys(n3, E)
    n5 = {k: v for k, v in n3.items() if k != "removed"} | {"wobbly": F, "rerun": FL}
    n6 = n5 | {"regress": P, "wobbly": P, "rerun": P, "provider with data set #1": F}
    n7 = n6 | {"broken": P, "expiring": P, "provider with data set #1": P}
    n8 = dict(n7)
    versions = ["v1", "v1", "v2", "v2", "v2", "v3", "v4", "v4"]
    statuses = ["failed"] * 6 + ["passed", "passed"]
    return [
        Night(i + 1, versions[i], outcomes, statuses[i])
        for i, outcomes in enumerate([n1, n2, n3, n4, n5, n6, n7, n8])
    ]


CONFIG = HistoryConfig(wholesale_min_tests=5)

# Per night: (new failures, still failing, fixed, new tests, disappeared, flaky, quarantined
# active & ran, expired entries, status, notify?, tests dropped?)
EXPECTED = {
    1: dict(new=set(), still=set(), fixed=set(), added=set(), gone=set(), flaky=set(),
            quarantined=1, expired=0, status="failed", notify=True, dropped=False),
    2: dict(new=set(), still={"broken", "quarantined"}, fixed=set(), added=set(), gone=set(),
            flaky=set(), quarantined=1, expired=0, status="failed", notify=False, dropped=False),
    3: dict(new={"regress"}, still={"broken"}, fixed=set(), added={"new_name"},
            gone={"old_name"}, flaky=set(), quarantined=2, expired=0, status="failed",
            notify=True, dropped=False),
    4: dict(new={"ok", "new_name", "removed", "wobbly", "rerun", "provider with data set #0",
                 "provider with data set #1"},
            still={"broken", "regress"}, fixed=set(), added=set(), gone=set(), flaky=set(),
            quarantined=2, expired=0, status="failed", notify=True, dropped=False),
    5: dict(new={"wobbly"}, still={"broken", "regress", "expiring"}, fixed=set(), added=set(),
            gone={"removed"}, flaky={"wobbly", "rerun"}, quarantined=1, expired=1,
            status="failed", notify=True, dropped=True),
    6: dict(new={"provider with data set #1"}, still={"broken", "expiring"},
            fixed={"regress", "wobbly"}, added=set(), gone=set(), flaky={"wobbly", "rerun"},
            quarantined=1, expired=1, status="failed", notify=True, dropped=False),
    7: dict(new=set(), still=set(), fixed={"broken", "expiring", "provider with data set #1"},
            added=set(), gone=set(), flaky={"wobbly", "rerun"}, quarantined=1, expired=1,
            status="passed", notify=True, dropped=False),
    8: dict(new=set(), still=set(), fixed=set(), added=set(), gone=set(),
            flaky={"wobbly", "rerun"}, quarantined=1, expired=1, status="passed",
            notify=False, dropped=False),
}  # fmt: skip


@pytest.fixture(scope="module")
def sections():
    store = MemoryStore()
    # "expiring": protected from before night 1 for 4 days -> expires 01:00 on night 5's day.
    add_to_quarantine(store, "shop", "prod", tid("expiring"), "flaky on CI", "ana",
                      START + timedelta(days=1, hours=-1), days=4)  # fmt: skip
    results = {}
    for night in nights():
        if night.number == 2:
            results[2] = run_night(store, night, CONFIG)
            add_to_quarantine(store, "shop", "prod", tid("quarantined"), "ticket SHOP-12",
                              "bo", night.started_at + timedelta(hours=1))  # fmt: skip
            continue
        messages = {"provider with data set #1": "Failed asserting that 500 is 200.\n at x.php:3"}
        results[night.number] = run_night(store, night, CONFIG, messages)
    return store, results


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_each_night_is_classified_exactly(sections, number):
    _, results = sections
    section = results[number]
    want = EXPECTED[number]
    got = dict(
        new=names(t.test_id for t in section.new_failures),
        still=names(t.test_id for t in section.still_failing),
        fixed=names(section.fixed),
        added=names(section.new_tests),
        gone=names(section.disappeared),
        flaky=names(t.test_id for t in section.flaky),
        quarantined=section.counts.quarantined,
        expired=section.counts.quarantine_expired,
        status=section.status,
        notify=section.notification is not None,
        dropped=section.tests_dropped,
    )
    assert got == want
    assert section.counts.new_failures == len(want["new"])
    assert section.counts.still_failing == len(want["still"])
    assert section.counts.new_tests == len(want["added"])
    assert section.counts.disappeared == len(want["gone"])


def test_outage_night_fails_wholesale_and_is_not_the_next_baseline(sections):
    _, results = sections
    assert results[4].wholesale_reason is not None
    assert "outage" in results[4].wholesale_reason
    assert results[4].notification is not None
    assert "failed wholesale" in results[4].notification.subject
    five = results[5]
    assert five.previous is not None and five.previous.run_id == "n4"
    assert five.baseline is not None and five.baseline.run_id == "n3"
    assert any("n4 failed wholesale" in note for note in five.notes)


def test_failing_tests_carry_their_history(sections):
    _, results = sections
    still = {short(t.test_id): t for t in results[5].still_failing}
    regress = still["regress"]
    # n5 fail, n4 error (outage), n3 fail, n2 pass, n1 pass.
    assert (regress.failed_runs, regress.of_runs) == (3, 5)
    assert regress.last_passed is not None and regress.last_passed.run_id == "n2"
    assert regress.failing_since is not None and regress.failing_since.run_id == "n3"
    assert not regress.since_is_lower_bound
    broken = still["broken"]
    assert (broken.failed_runs, broken.of_runs) == (5, 5)
    assert broken.last_passed is None
    assert broken.failing_since is not None and broken.failing_since.run_id == "n1"
    assert broken.since_is_lower_bound


def test_flaky_rules_and_reasons(sections):
    _, results = sections
    flaky = {short(t.test_id): t for t in results[6].flaky}
    assert flaky["wobbly"].rule == "same_version" and flaky["wobbly"].app_version == "v2"
    assert flaky["wobbly"].flips == 2
    assert flaky["rerun"].rule == "rerun"
    # regress changed outcome only with the version (v1 pass, v2 fail): not flaky; the outage
    # night (every test errored) made nothing flaky.
    assert "regress" not in flaky and "ok" not in flaky


def test_quarantine_section_says_active_and_expired(sections):
    _, results = sections
    rows = {short(q.test_id): q for q in results[5].quarantine}
    assert rows["quarantined"].state == "active" and rows["quarantined"].outcome == "failed"
    assert rows["expiring"].state == "expired" and rows["expiring"].owner == "ana"
    assert "1 quarantine expired" in results[5].headline
    # Protected tests do not count against the pass rate or the status.
    assert results[7].status == "passed"
    assert results[7].pass_rate == 1.0


def test_headline_and_notification_of_a_new_failure_night(sections):
    _, results = sections
    six = results[6]
    assert six.headline.startswith("1 new failure · 2 fixed · 2 still failing · 2 flaky")
    note = six.notification
    assert note is not None
    assert note.subject == "[ltr] test on prod: 1 new failure, pass rate 66.7 %"
    body = note.body
    assert body.index("NEW FAILURES (1)") < body.index("Tests:")
    assert "provider with data set #1\n    Failed asserting that 500 is 200." in body
    assert body.rstrip().endswith("Summary: {summary_url}")
    assert note.attributes["status"] == {"DataType": "String", "StringValue": "failed"}
    assert note.attributes["command"]["StringValue"] == "test"


def test_the_dropped_test_count_is_in_the_headline(sections):
    _, results = sections
    assert "tests dropped 11 → 10" in results[5].headline


def test_ltr_queries_over_the_same_history(sections):
    store, _ = sections
    rows = outcomes_of_test(store, SCOPE, "ShopTest::regress", limit=8)
    assert [(row.run.run_id, row.outcome) for row in rows] == [
        ("n8", "passed"), ("n7", "passed"), ("n6", "passed"), ("n5", "failed"),
        ("n4", "error"), ("n3", "failed"), ("n2", "passed"), ("n1", "passed"),
    ]  # fmt: skip
    assert {row.run.app_version for row in rows} == {"v1", "v2", "v3", "v4"}
    flaky = flaky_tests(store, SCOPE, now=START + timedelta(days=8, hours=1), days=14)
    assert [short(item.test_id) for item in flaky][:2] in (["wobbly", "rerun"], ["rerun", "wobbly"])
    assert {short(item.test_id) for item in flaky} == {"wobbly", "rerun"}


def test_the_section_is_json_serialisable(sections):
    import json

    _, results = sections
    document = json.loads(json.dumps(results[6].to_dict()))
    assert document["counts"]["new_failures"] == 1
    assert document["new_failures"][0]["failing_since"]["run_id"] == "n6"
    assert document["notification"]["attributes"]["environment"]["StringValue"] == "prod"


def test_ltr_resolves_a_short_test_name_to_its_full_id(sections):
    store, _ = sections
    assert find_test_ids(store, SCOPE, "ShopTest::wobbly") == [tid("wobbly")]
    assert len(find_test_ids(store, SCOPE, "provider with data set #0")) == 1
    assert find_test_ids(store, SCOPE, "nope") == []


def test_the_markdown_section_names_every_class_of_change(sections):
    from report_processor.history.section import markdown

    _, results = sections
    text = markdown(results[5])
    assert "Compared with run n3 (2026-11-04)." in text
    assert "> previous run n4 failed wholesale" in text
    assert (
        f"| `{tid('regress')}` | 3 of the last 5 runs | n2 (2026-11-03) | n3 (2026-11-04) |" in text
    )
    assert f"| `{tid('broken')}` | 5 of the last 5 runs | — | n1 (2026-11-02) or earlier |" in text
    assert "### Disappeared tests (1)" in text and f"- `{tid('removed')}`" in text
    assert f"| `{tid('wobbly')}` | 1 | 4 | passed and failed on v2 |" in text  # n5 F, n3-n1 P
    assert f"| `{tid('rerun')}` | 1 | 4 | passed on a rerun |" in text
    assert "**expired: counts again**" in text and "| ana | flaky on CI |" in text
    assert "First recorded run" in markdown(results[1])


def test_a_run_that_errored_before_any_test_ran():
    store = MemoryStore()
    config = HistoryConfig(wholesale_min_tests=2)
    run_night(store, Night(1, "v1", {"a": "pass", "b": "pass"}), config)
    section = run_night(store, Night(2, "v1", {}, runner_status="error"), config)
    assert section.status == "error" and section.tests == 0
    assert section.wholesale_reason == "the run ended 'error' before any test ran"
    assert section.tests_dropped and section.counts.disappeared == 2
    assert section.notification is not None
    assert section.notification.subject.startswith("[ltr] test on prod: run failed before any")
    after = run_night(store, Night(3, "v1", {"a": "pass", "b": "fail"}), config)
    assert after.baseline is not None and after.baseline.run_id == "n1"
    assert names(t.test_id for t in after.new_failures) == {"b"}
