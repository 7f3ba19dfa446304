"""The pure core of sharded runs (runner/sharding/plan.py, phpunit.py, databases.py) and the
plan/shard events: untrusted listings, history and plans; the packing's invariants."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner.config import ConfigError, RunnerConfig
from runner.events import PlanRequest, RejectedInput, ShardRequest, parse_event
from runner.sharding import databases, phpunit
from runner.sharding.plan import (
    Durations,
    Limits,
    ListedClass,
    ListedTest,
    PlanError,
    build_plan,
    check_phpt_tests,
    estimate,
    file_units,
    listed_test_keys,
    makespan,
    pack,
    parse_durations,
    parse_test_list,
    read_listing,
    read_shard,
    relative_test_file,
    select_groups,
    shard_cap,
)

from tests.runner.conftest import FIXTURE_APP

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
ALLOWED = ("test", "scribe:generate")

# What PHPUnit 9.6.7 writes for the fixture app (`php artisan test --list-tests-xml`).
FIXTURE_LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<tests>
 <testCaseClass name="Tests\\Unit\\OutcomesTest">
  <testCaseMethod name="test_a_failing_assertion" groups="outcomes"/>
  <testCaseMethod name="test_an_error" groups="outcomes"/>
 </testCaseClass>
 <testCaseClass name="Tests\\Unit\\SlugTest">
  <testCaseMethod name="test_slug_of_a_title" groups="default" dataSet="&quot;plain&quot;"/>
  <testCaseMethod name="test_slug_of_a_title" groups="default" dataSet="&quot;accents&quot;"/>
  <testCaseMethod name="test_collection_sums" groups="default"/>
 </testCaseClass>
 <testCaseClass name="Tests\\Feature\\NoteApiTest">
  <testCaseMethod name="test_the_database_is_postgresql" groups="database,slow"/>
 </testCaseClass>
</tests>
"""


def test_phpunits_listing_is_read_class_by_class():
    classes = parse_test_list(FIXTURE_LISTING)
    assert [c.name for c in classes] == [
        "Tests\\Unit\\OutcomesTest",
        "Tests\\Unit\\SlugTest",
        "Tests\\Feature\\NoteApiTest",
    ]
    slug = classes[1]
    assert [t.data_set for t in slug.tests] == ['"plain"', '"accents"', None]
    assert classes[2].tests[0].groups == ("database", "slow")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b'<!DOCTYPE t [<!ENTITY a "x">]><tests/>', "DOCTYPE"),
        (b"<tests><testCaseClass name='A;B'/></tests>", "no PHP class"),
        (b"<tests><testCaseClass name='..\\x'/></tests>", "no PHP class"),
        (b"<tests><testCaseMethod name='t'/></tests>", "outside a test class"),
        (b"<testsuites><testsuite/></testsuites>", "root is <testsuites>"),
        (b'<testSuite xmlns="urn:other"><tests/></testSuite>', "root is <testSuite>"),
        (
            b"<tests><testCaseClass name='A'><testCaseMethod name=''/></testCaseClass></tests>",
            "name",
        ),
        (b"<tests><testCaseClass", "not well-formed"),
    ],
)
def test_a_hostile_listing_is_refused(document, message):
    with pytest.raises(PlanError, match=message):
        parse_test_list(document)


# The newer shape of the listing (PHPUnit 12), as PHPUnit's own end-to-end tests expect it for
# the fixture app's classes: the file on each class, data sets in the id, groups after the tests.
NEWER_LISTING = b"""<?xml version="1.0"?>
<testSuite xmlns="https://xml.phpunit.de/testSuite">
 <tests>
  <testClass name="Tests\\Unit\\OutcomesTest" file="/var/task/app/tests/Unit/OutcomesTest.php">
   <testMethod id="Tests\\Unit\\OutcomesTest::test_a_failing_assertion" name="test_a_failing_assertion"/>
   <testMethod id="Tests\\Unit\\OutcomesTest::test_an_error" name="test_an_error"/>
  </testClass>
  <testClass name="Tests\\Unit\\SlugTest" file="/var/task/app/tests/Unit/SlugTest.php">
   <testMethod id="Tests\\Unit\\SlugTest::test_slug_of_a_title#plain" name="test_slug_of_a_title"/>
   <testMethod id="Tests\\Unit\\SlugTest::test_slug_of_a_title#accents" name="test_slug_of_a_title"/>
   <testMethod id="Tests\\Unit\\SlugTest::test_collection_sums" name="test_collection_sums"/>
  </testClass>
  <testClass name="Tests\\Feature\\NoteApiTest" file="/var/task/app/tests/Feature/NoteApiTest.php">
   <testMethod id="Tests\\Feature\\NoteApiTest::test_the_database_is_postgresql" name="test_the_database_is_postgresql"/>
  </testClass>
 </tests>
 <groups>
  <group name="database">
   <test id="Tests\\Feature\\NoteApiTest::test_the_database_is_postgresql"/>
  </group>
  <group name="outcomes">
   <test id="Tests\\Unit\\OutcomesTest::test_a_failing_assertion"/>
   <test id="Tests\\Unit\\OutcomesTest::test_an_error"/>
  </group>
  <group name="slow">
   <test id="Tests\\Feature\\NoteApiTest::test_the_database_is_postgresql"/>
  </group>
 </groups>
</testSuite>
"""  # noqa: E501 (PHPUnit writes these lines whole)


def test_the_newer_listing_shape_reads_like_the_older_one():
    older, newer = parse_test_list(FIXTURE_LISTING), parse_test_list(NEWER_LISTING)
    assert [c.name for c in newer] == [c.name for c in older]
    assert [len(c.tests) for c in newer] == [len(c.tests) for c in older]
    assert [t.data_set for t in newer[1].tests] == ["#plain", "#accents", None]
    assert newer[2].tests[0].groups == ("database", "slow")
    assert newer[0].tests[0].groups == ("outcomes",)
    # Group selection (which the listing does not apply) gives the same tests from both shapes.
    for include, exclude in [(("database",), ()), ((), ("outcomes",)), (("slow", "outcomes"), ())]:
        picked = [
            [(c.name, t.method, len(c.tests)) for c in select_groups(listing, include, exclude)
             for t in c.tests]
            for listing in (older, newer)
        ]  # fmt: skip
        assert picked[0] == picked[1]


@pytest.mark.parametrize(
    "document",
    [
        FIXTURE_LISTING.replace(b"</tests>", b'<phptFile path="/app/tests/cli.phpt"/></tests>'),
        NEWER_LISTING.replace(b"</tests>", b'<phpt file="/app/tests/cli.phpt"/></tests>'),
    ],
)
def test_phpt_tests_are_listed_apart_and_refused_when_the_groups_run_them(document):
    listing = read_listing(document)
    assert listing.phpt_files == ("/app/tests/cli.phpt",)
    assert [c.name for c in listing.classes] == [c.name for c in parse_test_list(FIXTURE_LISTING)]
    # PHPUnit puts a .phpt test in the group "default": a shard would silently not run it.
    for include, exclude in [((), ()), (("default",), ()), (("default", "api"), ("slow",))]:
        with pytest.raises(PlanError, match=r"1 \.phpt test .*cli\.phpt.*without shards"):
            check_phpt_tests(listing.phpt_files, include, exclude)
    # Groups that leave "default" out leave the .phpt test out of an unsharded run too.
    check_phpt_tests(listing.phpt_files, ("api",), ())
    check_phpt_tests(listing.phpt_files, (), ("default",))
    check_phpt_tests((), (), ())


def test_phpunits_own_placeholders_are_counted_not_packed():
    listing = FIXTURE_LISTING.replace(
        b"<tests>",
        b'<tests><testCaseClass name="PHPUnit\\Framework\\ErrorTestCase">'
        b'<testCaseMethod name="Error" groups="default"/></testCaseClass>',
    )
    classes = parse_test_list(listing)
    assert classes[0].name == "PHPUnit\\Framework\\ErrorTestCase"
    files = {c.name: f"tests/{i}Test.php" for i, c in enumerate(classes[1:])}
    plan = build_plan(
        run_id="r1",
        command="test",
        slug="test",
        started_at="2026-11-29T02:00:00.000Z",
        args=(),
        classes=classes,
        files=files,
        durations=Durations(),
        requested=2,
        limits=Limits(),
    )
    assert plan.placeholders == 1 and plan.document()["phpunit_placeholders"] == 1
    assert plan.tests_total == 6
    assert all(not c.name.startswith("PHPUnit") for s in plan.shards for c in s.classes)


def test_groups_select_as_phpunit_does():
    classes = parse_test_list(FIXTURE_LISTING)
    assert [c.name for c in select_groups(classes, ["database"])] == ["Tests\\Feature\\NoteApiTest"]
    kept = select_groups(classes, exclude=["outcomes", "slow"])
    assert [c.name for c in kept] == ["Tests\\Unit\\SlugTest"]
    assert sum(len(c.tests) for c in select_groups(classes)) == 6


def test_class_files_must_lie_inside_the_app():
    roots = ["/var/task/app", "/tmp/ltr-run-x/app"]
    assert relative_test_file("/var/task/app/tests/Unit/ATest.php", roots) == "tests/Unit/ATest.php"
    assert relative_test_file("/tmp/ltr-run-x/app/tests/BTest.php", roots) == "tests/BTest.php"
    for outside in ("/etc/passwd", "/var/task/app/../x.php", "/var/task/apple/x.php", "x.php"):
        assert relative_test_file(outside, roots) is None


# ----------------------------------------------------------------------------- history
def test_durations_of_the_history_are_read_and_junk_is_ignored():
    raw = json.dumps(
        {
            "version": 1,
            "classes": {
                "Tests\\Unit\\SlugTest": 1.5,
                "Tests.Feature.NoteApiTest": 4,  # PHPUnit 9's JUnit spelling
                "Tests\\Bad": -1,
                "Tests\\Worse": "7",
                "not a class!": 3,
                "Tests\\Flag": True,
            },
            "runs": 12,
            "updated_at": "2026-11-28T02:00:00Z",
        }
    ).encode()
    durations = parse_durations(raw)
    assert durations.classes == {"Tests\\Unit\\SlugTest": 1.5, "Tests\\Feature\\NoteApiTest": 4.0}
    assert durations.runs == 12 and durations.note is None


@pytest.mark.parametrize(
    "raw", [b"{", b"[]", b'{"version": 2, "classes": {}}', b'{"version": 1}', b"\xff", None]
)
def test_unusable_history_means_no_history(raw):
    durations = parse_durations(raw)
    assert durations.classes == {}
    assert (durations.note is None) == (raw is None)


def test_nan_and_infinity_in_history_are_ignored():
    durations = parse_durations(b'{"version": 1, "classes": {"A": NaN, "B": Infinity, "C": 2}}')
    assert durations.classes == {"C": 2.0}


def test_a_number_too_large_for_a_float_in_history_is_ignored():
    # math.isfinite() raised OverflowError on it: the plan failed over advisory history.
    huge = b"1" + b"0" * 400
    durations = parse_durations(b'{"version": 1, "classes": {"A": ' + huge + b', "C": 2}}')
    assert durations.classes == {"C": 2.0}


def listed(name: str, tests: int) -> ListedClass:
    return ListedClass(name, tuple(ListedTest(f"test_{i}", ("default",)) for i in range(tests)))


def test_classes_without_history_get_the_median_of_the_others():
    classes = [listed("A", 1), listed("B", 1), listed("C", 1), listed("D", 9)]
    files = {c.name: f"tests/{c.name}Test.php" for c in classes}
    durations = Durations({"A": 1.0, "B": 3.0, "C": 10.0, "Gone": 100.0})
    result = estimate(classes, files, durations)
    assert [c.estimated_seconds for c in result.classes] == [1.0, 3.0, 10.0, 3.0]
    assert result.without_history == 1 and result.basis == "history+median"


def test_without_any_history_test_counts_stand_in():
    classes = [listed("A", 2), listed("B", 7)]
    result = estimate(classes, {"A": "tests/A.php", "B": "tests/B.php"}, Durations())
    assert [c.estimated_seconds for c in result.classes] == [None, None]
    assert [c.weight for c in result.classes] == [2.0, 7.0]
    assert result.basis == "test_counts" and result.without_history == 2


def test_a_class_without_a_file_cannot_be_planned():
    with pytest.raises(PlanError, match="no file is known"):
        estimate([listed("A", 1)], {}, Durations())


# ----------------------------------------------------------------------------- caps
@pytest.mark.parametrize(
    ("limits", "units", "applied", "reason"),
    [
        (Limits(), 50, 8, "as requested"),
        (Limits(max_shards=4), 50, 4, "runner.max_shards (MAX_SHARDS=4)"),
        (Limits(max_shards=6, reserved_concurrency=3), 50, 3, "reserved concurrency"),
        (
            Limits(db_connection_budget=10, db_connections_per_shard=2),
            50,
            5,
            "database connection budget (DB_CONNECTION_BUDGET=10, 2 per shard)",
        ),
        (Limits(max_shards=6), 5, 5, "the number of test files (5)"),
    ],
)
def test_the_cap_that_applied_is_named(limits, units, applied, reason):
    cap = shard_cap(8, units, limits)
    assert (cap.requested, cap.applied) == (8, applied)
    assert reason in cap.reason


def test_a_budget_below_one_shard_and_an_empty_suite_are_errors():
    with pytest.raises(PlanError, match="no room for one shard"):
        shard_cap(4, 10, Limits(db_connection_budget=1, db_connections_per_shard=2))
    with pytest.raises(PlanError, match="no tests"):
        shard_cap(4, 0, Limits())


# ----------------------------------------------------------------------------- packing
CLASS_NAMES = st.from_regex(r"Tests\\[A-Z][a-z]{0,6}\\[A-Z][a-zA-Z]{0,8}Test", fullmatch=True)


@st.composite
def suites(draw):
    names = draw(st.lists(CLASS_NAMES, min_size=1, max_size=40, unique=True))
    classes = []
    for name in names:
        tests = draw(st.integers(min_value=1, max_value=6))
        classes.append(
            ListedClass(
                name,
                tuple(
                    ListedTest(f"test_{i % 3}", ("default",), None if i < 3 else f"#{i}")
                    for i in range(tests)
                ),
            )
        )
    # A few classes share a file (PHPUnit then runs both from that one <file>).
    files = {
        name: f"tests/{draw(st.integers(min_value=0, max_value=len(names) + 3))}Test.php"
        for name in names
    }
    known = draw(st.lists(st.sampled_from(names), unique=True))
    seconds = st.floats(min_value=0, max_value=600, allow_nan=False)
    durations = Durations({name: draw(seconds) for name in known})
    return classes, files, durations


@settings(max_examples=300, deadline=None)
@given(suite=suites(), requested=st.integers(min_value=1, max_value=20))
def test_shards_partition_the_listed_suite(suite, requested):
    classes, files, durations = suite
    plan = build_plan(
        run_id="r1",
        command="test",
        slug="test",
        started_at="2026-11-29T02:00:00.000Z",
        args=(),
        classes=classes,
        files=files,
        durations=durations,
        requested=requested,
        limits=Limits(),
    )
    listed = Counter(key for c in classes for key in listed_test_keys(c))
    by_name = {c.name: c for c in classes}
    planned = Counter(
        key
        for shard in plan.shards
        for c in shard.classes
        for key in listed_test_keys(by_name[c.name])
    )
    # The union is the listed suite, and no test is in two shards.
    assert planned == listed
    assert plan.tests_total == sum(listed.values())
    # A file, and every class PHPUnit takes from it, is in exactly one shard.
    owners = Counter(file for shard in plan.shards for file in shard.files)
    assert set(owners.values()) == {1}
    assert len(plan.shards) == min(requested, len(set(files.values())))
    assert all(shard.classes for shard in plan.shards)
    # List scheduling's bound: no shard ends later than the average plus the largest file.
    units = [
        sum(c.weight for c in unit)
        for unit in file_units(estimate(classes, files, durations).classes)
    ]
    assert makespan(plan.shards) <= sum(units) / len(plan.shards) + max(units) + 1e-6


def test_longest_first_beats_the_listing_order():
    classes = [listed(name, 1) for name in "ABCDEF"]
    files = {c.name: f"tests/{c.name}.php" for c in classes}
    durations = Durations({"A": 1, "B": 1, "C": 1, "D": 1, "E": 6, "F": 6})
    shards = pack(estimate(classes, files, durations).classes, 2)
    assert sorted(shard.weight for shard in shards) == [8.0, 8.0]
    # Each shard keeps its classes in the listing's order.
    for shard in shards:
        order = [c.name for c in shard.classes]
        assert order == sorted(order)


# ----------------------------------------------------------------------------- plan.json
def fixture_plan(shards: int = 2):
    classes = parse_test_list(FIXTURE_LISTING)
    files = {
        c.name: "tests/" + c.name.split("\\", 1)[1].replace("\\", "/") + ".php" for c in classes
    }
    return build_plan(
        run_id="nightly-1",
        command="test",
        slug="test",
        started_at="2026-11-29T02:00:00.000Z",
        args=("--exclude-group", "slow"),
        classes=classes,
        files=files,
        durations=Durations({"Tests\\Unit\\SlugTest": 2.0}),
        requested=shards,
        limits=Limits(),
    )


def test_plan_json_has_the_contracts_shape_and_reads_back():
    plan = fixture_plan()
    document = plan.document()
    assert {
        "version",
        "run_id",
        "command",
        "slug",
        "started_at",
        "shard_count",
        "tests_total",
        "classes_without_history",
        "shards",
    } <= set(document)
    assert document["shard_count"] == 2 and document["tests_total"] == 6
    assert document["classes_without_history"] == 2
    assert set(document["shards"][0]["classes"][0]) == {
        "name",
        "file",
        "tests",
        "estimated_seconds",
    }
    raw = json.dumps(document).encode()
    seen = []
    for index in range(2):
        shard = read_shard(raw, run_id="nightly-1", command="test", index=index, count=2)
        assert shard.args == ("--exclude-group", "slow")
        seen += shard.classes
    assert sorted(seen) == sorted(c.name for c in parse_test_list(FIXTURE_LISTING))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_id": "other-run"}, "belongs to run 'other-run'"),
        ({"command": "scribe:generate"}, "is a plan of"),
        ({"shard_count": 3}, "the event says 2"),
        ({"version": 2}, "version 1"),
    ],
)
def test_a_plan_that_is_not_this_runs_is_refused(change, message):
    document = {**fixture_plan().document(), **change}
    with pytest.raises(PlanError, match=message):
        read_shard(
            json.dumps(document).encode(), run_id="nightly-1", command="test", index=0, count=2
        )


@pytest.mark.parametrize(
    "file", ["/etc/passwd.php", "../x.php", "tests/../../x.php", "tests/a.sh", "", None, "a\\b.php"]
)
def test_a_plan_naming_a_file_outside_the_app_is_refused(file):
    document = fixture_plan().document()
    document["shards"][0]["classes"][0]["file"] = file
    with pytest.raises(PlanError, match="not a .php path inside the app"):
        read_shard(
            json.dumps(document).encode(), run_id="nightly-1", command="test", index=0, count=2
        )


# ----------------------------------------------------------------------------- PHPUnit config
def test_a_shards_configuration_is_the_apps_with_only_its_files():
    app = (FIXTURE_APP / "phpunit.xml").read_bytes()
    generated = phpunit.shard_configuration(
        app, ["/app/tests/Unit/SlugTest.php", "/app/tests/Feature/HealthTest.php"], "shard-001"
    )
    root = ET.fromstring(generated)  # noqa: S314 (generated by the test itself)
    suites = root.findall("testsuites/testsuite")
    assert [s.get("name") for s in suites] == ["shard-001"]
    assert [f.text for f in suites[0]] == [
        "/app/tests/Unit/SlugTest.php",
        "/app/tests/Feature/HealthTest.php",
    ]
    assert "defaultTestSuite" not in root.attrib
    assert root.get("bootstrap") == "vendor/autoload.php"
    assert [e.get("name") for e in root.findall("php/env")] == [
        "APP_ENV",
        "CACHE_DRIVER",
        "QUEUE_CONNECTION",
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b'<!DOCTYPE phpunit [<!ENTITY x "y">]><phpunit/>', "DOCTYPE"),
        (b"<phpunit>", "not well-formed"),
        (b"<project/>", "<project> root"),
    ],
)
def test_an_unusable_app_configuration_is_refused(config, message):
    with pytest.raises(PlanError, match=message):
        phpunit.shard_configuration(config, ["/app/tests/ATest.php"], "shard-000")


GROUPED_CONFIG = b"""<phpunit><testsuites><testsuite name="A"><directory>tests</directory>
</testsuite></testsuites><groups><include><group>fast</group><group>db</group></include>
<exclude><group>slow</group><group>db</group></exclude></groups></phpunit>"""


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ([], [], (["fast", "db"], ["slow", "db"])),
        (["db"], [], (["db"], ["slow"])),  # a group named by --group is never excluded
        ([], ["x"], (["fast", "db"], ["x"])),
        (["a"], ["b"], (["a"], ["b"])),
    ],
)
def test_the_apps_configured_groups_apply_as_phpunit_applies_them(include, exclude, expected):
    assert phpunit.effective_groups(GROUPED_CONFIG, include, exclude) == expected
    plain = (FIXTURE_APP / "phpunit.xml").read_bytes()
    assert phpunit.effective_groups(plain, include, exclude) == (include, exclude)


def test_class_files_dumps_are_merged_and_junk_dropped():
    dumps = [
        b"[]",
        b'{"Tests\\\\ATest": "/app/tests/ATest.php", "bad name": "/x", "Tests\\\\B": 5}',
    ]
    assert phpunit.parse_class_files(dumps) == {"Tests\\ATest": "/app/tests/ATest.php"}
    with pytest.raises(PlanError):
        phpunit.parse_class_files([b"not json"])


# ----------------------------------------------------------------------------- databases
def test_database_identifiers_are_quoted_and_bounded():
    assert databases.quote_identifier('we"ird; DROP') == '"we""ird; DROP"'
    with pytest.raises(databases.DatabaseNameError, match="over 63 bytes"):
        databases.quote_identifier("x" * 64)
    with pytest.raises(databases.DatabaseNameError):
        databases.quote_identifier("a\0b")
    statements = databases.create_statements("ltr_shard_1", 'tpl"x')
    assert statements == [
        'DROP DATABASE IF EXISTS "ltr_shard_1" WITH (FORCE)',
        'CREATE DATABASE "ltr_shard_1" TEMPLATE "tpl""x"',
    ]


def test_shard_database_names_are_distinct_stable_and_short():
    names = {
        databases.shard_database_name(run, i) for run in ("a", "b", "x" * 64) for i in range(3)
    }
    assert len(names) == 9
    assert all(len(n) <= 63 and n.startswith("ltr_shard_") for n in names)
    assert databases.shard_database_name("a", 1) == databases.shard_database_name("a", 1)


def test_shard_settings_come_from_the_environment():
    config = RunnerConfig.from_env(
        {
            "MAX_SHARDS": "8",
            "RESERVED_CONCURRENCY": "5",
            "DB_CONNECTION_BUDGET": "20",
            "DB_CONNECTIONS_PER_SHARD": "3",
            "DB_TEMPLATE": "app_template",
        }
    )
    assert config.shard_limits == Limits(8, 5, 20, 3)
    assert config.shard_database.mode == "template"
    assert config.shard_database.template == "app_template"
    assert RunnerConfig.from_env({}).shard_database.mode == "shared"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_SHARDS": "0"}, "MAX_SHARDS"),
        ({"MAX_SHARDS": "many"}, "MAX_SHARDS"),
        ({"DB_SHARD_MODE": "clone"}, "DB_SHARD_MODE"),
        ({"DB_SHARD_MODE": "template"}, "needs DB_TEMPLATE"),
        ({"DB_TEMPLATE": "t" * 64}, "DB_TEMPLATE"),
    ],
)
def test_bad_shard_settings_are_configuration_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        RunnerConfig.from_env(env)


# ----------------------------------------------------------------------------- events
PLAN_KEY = "runs/2026-11-29/nightly-1/test/plan.json"


def test_plan_and_shard_events_are_parsed():
    plan = parse_event(
        {"action": "plan", "command": "test", "run_id": "nightly-1", "shards": 4, "args": []},
        ALLOWED,
        NOW,
    )
    assert plan == PlanRequest("test", (), "nightly-1", True, 4)
    shard = parse_event(
        {
            "command": "test",
            "run_id": "nightly-1",
            "shard": {"index": 3, "count": 4, "plan_key": PLAN_KEY},
        },
        ALLOWED,
        NOW,
    )
    assert isinstance(shard, ShardRequest)
    assert (shard.index, shard.count, shard.location.path) == (3, 4, "2026-11-29/nightly-1/test")


def shard_event(run_id="nightly-1", **shard):
    return {
        "command": "test",
        "run_id": run_id,
        "shard": {"index": 0, "count": 4, "plan_key": PLAN_KEY, **shard},
    }


OTHER_KEYS = (
    "runs/2026-11-29/nightly-1/test/junit.xml",
    "runs/2026-11-29/nightly-1/test/../x/plan.json",
    "runs/2026-11-29/nightly-1/scribe-generate/plan.json",
    "runs/2026-11-29/nightly-1/test/shards/000/plan.json",
)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "merge", "command": "test", "shards": 2}, "unknown action"),
        ({"action": "plan", "command": "scribe:generate", "shards": 2}, "only test can be"),
        ({"action": "plan", "command": "test", "shards": 0}, "shards"),
        ({"action": "plan", "command": "test", "shards": True}, "shards"),
        ({"action": "plan", "command": "test", "shards": 1001}, "shards"),
        ({"action": "plan", "command": "test", "shards": 2, "bucket": "x"}, "unknown field"),
        (
            {"action": "plan", "command": "test", "shards": 2, "args": ["--log-junit", "/x"]},
            "set by the runner",
        ),
        (shard_event(index=4), "shard.index"),
        (shard_event(index=-1), "shard.index"),
        (shard_event(index=False), "shard.index"),
        (shard_event(count=0), "shard.count"),
        (shard_event(extra=1), '"shard" must be'),
        ({"command": "test", "run_id": "nightly-1", "shard": [0, 4, PLAN_KEY]}, '"shard" must be'),
        (shard_event(run_id="other-run"), "is not the plan of run 'other-run'"),
        (shard_event(run_id="../x"), "run_id"),
        (shard_event(plan_key=7), "is not a plan key"),
        (shard_event(plan_key="x" * 2000), "is not a plan key"),
        *[(shard_event(plan_key=key), "plan") for key in OTHER_KEYS],
        ({**shard_event(), "args": ["--filter", "x"]}, "unknown field"),
        ({"command": "test", "shard": {"index": 0, "count": 4, "plan_key": PLAN_KEY}}, "run_id"),
    ],
)
def test_hostile_plan_and_shard_events_are_rejected(event, message):
    with pytest.raises(RejectedInput, match=message):
        parse_event(event, ALLOWED, NOW)


def test_a_repeated_plan_request_gets_the_written_plans_answer_and_nothing_else_does():
    from runner.sharding.plan import repeated_plan_response

    document = {
        "version": 1, "run_id": "r1", "command": "test", "args": ["--group", "a"],
        "shard_count": 2, "classes_without_history": 0, "estimate_basis": "test_counts",
        "phpunit_placeholders": 0,
        "cap": {"requested": 3, "applied": 2, "reason": "capped by the number of test files (2)"},
        "shards": [
            {"index": 0, "tests": 3, "estimated_seconds": None, "classes": [{}, {}]},
            {"index": 1, "tests": 2, "estimated_seconds": None, "classes": [{}]},
        ],
    }  # fmt: skip
    same = {"run_id": "r1", "command": "test", "args": ("--group", "a"), "requested": 3}
    answer = repeated_plan_response(json.dumps(document).encode(), **same)
    assert answer is not None
    assert answer["shard_count"] == 2 and answer["tests_total"] == 5
    assert answer["shards"][0] == {"index": 0, "classes": 2, "tests": 3, "estimated_seconds": None}
    assert answer["cap"] == document["cap"]
    for other in ({"run_id": "r2"}, {"args": ()}, {"requested": 2}, {"command": "x"}):
        assert repeated_plan_response(json.dumps(document).encode(), **{**same, **other}) is None
    for broken in (b"", b"{", b"[]", json.dumps({**document, "shard_count": 3}).encode()):
        assert repeated_plan_response(broken, **same) is None
    assert repeated_plan_response(None, **same) is None
