"""Splitting one test suite into N shards: the pure core (no AWS, no processes).

Input: PHPUnit's own listing of the suite (`--list-tests-xml`), the file each listed class was
loaded from (recorded in the listing process), the class durations the report processor's
history keeps (durations.json) and the caps of the deployment. Output: the plan, as plan.json
holds it (the contract of issue 13, docs/sharding.md).

The unit of packing is a test file, not a class: a `<file>` entry of a PHPUnit configuration
runs every test class PHPUnit takes from that file, so two classes of one file must share a
shard or their tests would run twice.
"""

from __future__ import annotations

import heapq
import json
import re
import statistics
import xml.parsers.expat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

PLAN_VERSION = 1
MAX_SHARDS_PER_RUN = 1000  # shards/000/ .. shards/999/ (runner/layout.py MAX_SHARD_INDEX + 1)
MAX_LISTING_BYTES = 64 * 1024 * 1024
MAX_DURATIONS_BYTES = 16 * 1024 * 1024
MAX_PLAN_BYTES = 32 * 1024 * 1024
MAX_TESTS = 2_000_000
# Beyond this a number of seconds is junk (no test runs for 115 days), as in the report processor.
MAX_SECONDS = 1e7

# A PHP class name: segments of letters, digits, '_' and bytes >= 0x80, joined by '\'.
_PHP_NAME = r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*"
CLASS_NAME = re.compile(rf"{_PHP_NAME}(?:\\{_PHP_NAME}){{0,63}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PlanError(ValueError):
    """The suite cannot be planned; the message says why and what would fix it."""


# ----------------------------------------------------------------------------- the listing
@dataclass(frozen=True)
class ListedTest:
    method: str
    groups: tuple[str, ...]
    data_set: str | None = None


@dataclass(frozen=True)
class ListedClass:
    name: str
    tests: tuple[ListedTest, ...]


@dataclass(frozen=True)
class Listing:
    classes: list[ListedClass]
    phpt_files: tuple[str, ...]  # as PHPUnit names them (absolute paths)


def parse_test_list(document: bytes) -> list[ListedClass]:
    """The test classes of PHPUnit's listing (read_listing)."""
    return read_listing(document).classes


def read_listing(document: bytes) -> Listing:
    """PHPUnit's `--list-tests-xml` document, in either of the shapes PHPUnit writes:

    - `<tests><testCaseClass name><testCaseMethod name groups dataSet/>…</testCaseClass>
      <phptFile path/></tests>` (PHPUnit 9 and 10, from their sources; 9.6 runs here);
    - `<testSuite xmlns="https://xml.phpunit.de/testSuite"><tests><testClass name file>
      <testMethod id name/>…</testClass><phpt file/></tests><groups><group name><test id/>
      </group></groups></testSuite>` (the newer shape, PHPUnit 12, from its end-to-end tests).

    Untrusted (written by the app's process): no DOCTYPE, bounded, names checked. A class listed
    twice is merged, in first-seen order. .phpt tests are listed apart (check_phpt_tests)."""
    if len(document) > MAX_LISTING_BYTES:
        raise PlanError(f"the test listing is {len(document)} bytes; at most {MAX_LISTING_BYTES}")
    reader = _ListingReader()
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.StartDoctypeDeclHandler = _refuse_listing_doctype
    try:
        parser.Parse(document, True)
    except xml.parsers.expat.ExpatError as error:
        raise PlanError(f"the test listing is not well-formed XML ({error})") from None
    return Listing(reader.classes(), tuple(reader.phpt))


def check_phpt_tests(
    phpt_files: Sequence[str], include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> None:
    """Refuse to plan a run whose groups select .phpt tests: a shard's configuration names
    class files, so they would silently not run. PHPUnit puts every .phpt test in the group
    "default", so `--group api` (or the configuration's include list) leaves them out."""
    wanted, unwanted = frozenset(include), frozenset(exclude)
    if not phpt_files or (wanted and "default" not in wanted) or "default" in unwanted:
        return
    # A path's end names the test: keep that when it is long.
    shown = ", ".join(
        repr(path if len(path) <= 100 else "…" + path[-99:]) for path in phpt_files[:3]
    )
    count = f"{len(phpt_files)} .phpt test" + ("s" if len(phpt_files) != 1 else "")
    raise PlanError(
        f"the suite has {count} ({shown}): a sharded run splits PHPUnit test classes only and "
        "would not run them; run this command without shards, leave them out with its groups "
        "(--exclude-group default), or keep them in a suite of their own that it does not run"
    )


_LISTING_NAMESPACE = "https://xml.phpunit.de/testSuite"
_CLASS_TAGS = frozenset({"testCaseClass", "testClass"})
_METHOD_TAGS = frozenset({"testCaseMethod", "testMethod"})
_PHPT_TAGS = frozenset({"phptFile", "phpt"})


@dataclass
class _ListedMethod:
    method: str
    groups: list[str]
    data_set: str | None
    test_id: str | None  # the newer shape names groups by test id, after the tests


class _ListingReader:
    """expat's handlers for parse_test_list: both shapes in one pass."""

    def __init__(self) -> None:
        self.tests: dict[str, list[_ListedMethod]] = {}  # in first-seen order
        self.current: str | None = None
        self.count = 0
        self.phpt: list[str] = []
        self.group: str | None = None
        self.groups_of: dict[str, list[str]] = {}
        self.root_seen = False

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if not self.root_seen:
            self._check_root(tag, attributes)
        elif tag in _CLASS_TAGS:
            self._open_class(attributes.get("name", ""))
        elif tag in _METHOD_TAGS:
            self._add_test(tag, attributes)
        elif tag in _PHPT_TAGS:
            self.phpt.append(attributes.get("path") or attributes.get("file") or "?")
        elif tag == "group":
            self.group = attributes.get("name", "")
        elif tag == "test" and self.group:
            self.groups_of.setdefault(attributes.get("id", ""), []).append(self.group)

    def end(self, tag: str) -> None:
        if tag in _CLASS_TAGS:
            self.current = None
        elif tag == "group":
            self.group = None

    def classes(self) -> list[ListedClass]:
        return [
            ListedClass(name, tuple(self._listed(test) for test in tests))
            for name, tests in self.tests.items()
        ]

    def _listed(self, test: _ListedMethod) -> ListedTest:
        groups = test.groups or self.groups_of.get(test.test_id or "", [])
        return ListedTest(test.method, tuple(groups), test.data_set)

    def _check_root(self, tag: str, attributes: dict[str, str]) -> None:
        self.root_seen = True
        if tag == "tests" or (tag == "testSuite" and attributes.get("xmlns") == _LISTING_NAMESPACE):
            return
        raise PlanError(
            f"the test listing's root is <{tag[:80]}>, not PHPUnit's <tests> or <testSuite "
            f'xmlns="{_LISTING_NAMESPACE}">: is the PHPUnit version supported (docs/sharding.md)?'
        )

    def _open_class(self, name: str) -> None:
        if not CLASS_NAME.fullmatch(name):
            raise PlanError(f"the listing names a class {name[:120]!r} that is no PHP class")
        self.tests.setdefault(name, [])
        self.current = name

    def _add_test(self, tag: str, attributes: dict[str, str]) -> None:
        owner = self.current
        if owner is None:
            raise PlanError(f"the listing has a {tag} outside a test class")
        method = attributes.get("name", "")
        if not method or _CONTROL.search(method):
            raise PlanError(f"the listing has a test of {owner} without a usable name")
        self.count += 1
        if self.count > MAX_TESTS:
            raise PlanError(f"the listing has more than {MAX_TESTS} tests")
        test_id = attributes.get("id")
        data_set = attributes.get("dataSet")
        if data_set is None and test_id is not None:
            # The newer shape names a data set only in the id: "Class::method#name".
            head = f"{owner}::{method}#"
            data_set = "#" + test_id[len(head) :] if test_id.startswith(head) else None
        groups = [group for group in attributes.get("groups", "").split(",") if group]
        self.tests[owner].append(_ListedMethod(method, groups, data_set, test_id))


def _refuse_listing_doctype(*_: object) -> None:
    raise PlanError("the test listing has a DOCTYPE; PHPUnit never writes one")


def select_groups(
    classes: Sequence[ListedClass], include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[ListedClass]:
    """What PHPUnit's --group / --exclude-group keep (the listing ignores both): a test runs
    when it has one of `include` (if any is given) and none of `exclude`. Classes left without
    tests are dropped: no shard needs to start for them."""
    wanted, unwanted = frozenset(include), frozenset(exclude)
    kept = []
    for listed in classes:
        tests = tuple(
            test
            for test in listed.tests
            if (not wanted or wanted.intersection(test.groups))
            and not unwanted.intersection(test.groups)
        )
        if tests:
            kept.append(ListedClass(listed.name, tests))
    return kept


# PHPUnit lists a problem it met while building the suite (a data provider that throws, a test
# method that is not public, ...) as a test of one of its own classes, e.g.
# `PHPUnit\Framework\ErrorTestCase::Error`. It belongs to whichever class caused it, which the
# listing does not say; PHPUnit makes it again when that class's file runs in its shard.
PLACEHOLDER_NAMESPACE = "PHPUnit\\"


def split_placeholders(classes: Sequence[ListedClass]) -> tuple[list[ListedClass], int]:
    """The app's classes, and the number of PHPUnit's placeholder tests among the listed."""
    real = [c for c in classes if not c.name.startswith(PLACEHOLDER_NAMESPACE)]
    placeholders = sum(len(c.tests) for c in classes if c.name.startswith(PLACEHOLDER_NAMESPACE))
    return real, placeholders


def listed_test_keys(listed: ListedClass) -> list[tuple[str, str, str | None]]:
    """One key per listed test: (class, method, data set)."""
    return [(listed.name, test.method, test.data_set) for test in listed.tests]


def relative_test_file(path: str, roots: Sequence[str]) -> str | None:
    """The file a class was loaded from, relative to the app (one of `roots`: the app folder,
    its real path, the run's mirror of it), or None when it lies outside or is not a plain
    path."""
    if not isinstance(path, str) or _CONTROL.search(path):
        return None
    for root in roots:
        head = root.rstrip("/") + "/"
        if path.startswith(head):
            relative = path[len(head) :]
            parts = PurePosixPath(relative).parts
            if parts and not any(part in ("..", ".", "/") for part in parts):
                return "/".join(parts)
    return None


def check_relative_file(file: object) -> str:
    """A class file as plan.json holds it: relative, inside the app, ending in .php."""
    if (
        not isinstance(file, str)
        or not file
        or len(file) > 1024
        or _CONTROL.search(file)
        or file.startswith("/")
        or "\\" in file
        or any(part in ("", ".", "..") for part in file.split("/"))
        or not file.endswith(".php")
    ):
        raise PlanError(f"class file {str(file)[:120]!r} is not a .php path inside the app")
    return file


def shards_over_budget(
    shards: Sequence[PlannedShard], budget_seconds: float
) -> list[tuple[int, float]]:
    """(index, estimated seconds) of the shards whose estimate from history is longer than a
    shard has before its deadline: each will be stopped there and its remaining tests reported
    as not run. Shards estimated from test counts alone (no history) say nothing here."""
    return [
        (shard.index, estimate)
        for shard in shards
        if (estimate := shard.estimated_seconds) is not None and estimate > budget_seconds
    ]


# ----------------------------------------------------------------------------- history
@dataclass(frozen=True)
class Durations:
    """Median seconds per class (FQCN with backslashes) from the report processor's history."""

    classes: Mapping[str, float] = field(default_factory=dict)
    runs: int = 0
    note: str | None = None  # why the file was not used, when it was not


def parse_durations(raw: bytes | None) -> Durations:
    """durations.json: `{"version": 1, "classes": {FQCN: seconds}, "runs": n, "updated_at"}`.
    Missing or unusable means no history (the plan says why): planning never fails on it."""
    if raw is None:
        return Durations()
    if len(raw) > MAX_DURATIONS_BYTES:
        return Durations(note=f"durations.json is over {MAX_DURATIONS_BYTES} bytes: ignored")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Durations(note="durations.json is not JSON: ignored")
    if not isinstance(data, dict) or data.get("version") != 1:
        return Durations(note="durations.json is not version 1: ignored")
    entries = data.get("classes")
    if not isinstance(entries, dict):
        return Durations(note="durations.json has no classes object: ignored")
    classes: dict[str, float] = {}
    for name, seconds in entries.items():
        # PHPUnit 9's JUnit writes `Tests.Feature.UserTest`; a PHP name never holds a '.'.
        fqcn = str(name).replace(".", "\\")
        value = _seconds(seconds)
        if CLASS_NAME.fullmatch(fqcn) and value is not None:
            classes[fqcn] = value
    runs = data.get("runs")
    runs = runs if isinstance(runs, int) and not isinstance(runs, bool) and runs >= 0 else 0
    return Durations(classes, runs)


# ----------------------------------------------------------------------------- estimates
@dataclass(frozen=True)
class PlannedClass:
    name: str
    file: str
    tests: int
    # Seconds from history (or the median of the classes that have it); None without any
    # history, when the plan balances test counts instead.
    estimated_seconds: float | None
    from_history: bool

    @property
    def weight(self) -> float:
        return float(self.tests) if self.estimated_seconds is None else self.estimated_seconds


@dataclass(frozen=True)
class Estimates:
    classes: tuple[PlannedClass, ...]
    without_history: int
    basis: str  # "history" (every class known), "history+median", "test_counts"


def estimate(
    classes: Sequence[ListedClass], files: Mapping[str, str], durations: Durations
) -> Estimates:
    """Each class's expected seconds: its median from history; classes without history get the
    median of the others; with no history at all, test counts stand in for time."""
    missing = [listed.name for listed in classes if listed.name not in files]
    if missing:
        raise PlanError(
            f"no file is known for {len(missing)} listed class(es), e.g. {missing[0]}: the "
            "listing process did not load them from a file inside the app"
        )
    known = [durations.classes[c.name] for c in classes if c.name in durations.classes]
    fallback = statistics.median(known) if known else None
    planned = tuple(
        PlannedClass(
            name=listed.name,
            file=files[listed.name],
            tests=len(listed.tests),
            estimated_seconds=_round(durations.classes.get(listed.name, fallback)),
            from_history=listed.name in durations.classes,
        )
        for listed in classes
    )
    without = sum(1 for c in planned if not c.from_history)
    basis = "test_counts" if not known else ("history" if without == 0 else "history+median")
    return Estimates(planned, without, basis)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


# ----------------------------------------------------------------------------- caps
@dataclass(frozen=True)
class Limits:
    """What bounds the number of shards besides the request (None: no such bound)."""

    max_shards: int | None = None  # config runner.max_shards (MAX_SHARDS)
    reserved_concurrency: int | None = None  # the runner's (RESERVED_CONCURRENCY)
    db_connection_budget: int | None = None  # DB_CONNECTION_BUDGET
    db_connections_per_shard: int = 2


@dataclass(frozen=True)
class Cap:
    requested: int
    applied: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"requested": self.requested, "applied": self.applied, "reason": self.reason}


def shard_cap(requested: int, units: int, limits: Limits) -> Cap:
    """The number of shards: the request, lowered by each configured bound and by the number
    of test files to share out; the reason names the bound that applied."""
    if units < 1:
        raise PlanError("the listing has no tests to run (check --testsuite/--group)")
    bounds: list[tuple[int, str]] = []
    if limits.max_shards is not None:
        bounds.append((limits.max_shards, f"runner.max_shards (MAX_SHARDS={limits.max_shards})"))
    if limits.reserved_concurrency is not None:
        bounds.append(
            (
                limits.reserved_concurrency,
                f"the runner's reserved concurrency (RESERVED_CONCURRENCY="
                f"{limits.reserved_concurrency})",
            )
        )
    if limits.db_connection_budget is not None:
        per_shard = limits.db_connections_per_shard
        allowed = limits.db_connection_budget // per_shard
        if allowed < 1:
            raise PlanError(
                f"DB_CONNECTION_BUDGET={limits.db_connection_budget} leaves no room for one "
                f"shard of {per_shard} connections (DB_CONNECTIONS_PER_SHARD)"
            )
        bounds.append(
            (
                allowed,
                f"the database connection budget (DB_CONNECTION_BUDGET="
                f"{limits.db_connection_budget}, {per_shard} per shard)",
            )
        )
    bounds.append((units, f"the number of test files ({units})"))
    applied, reason = requested, "as requested"
    for bound, why in bounds:
        if bound < applied:
            applied, reason = bound, f"capped by {why}"
    return Cap(requested, applied, reason)


# ----------------------------------------------------------------------------- packing
@dataclass(frozen=True)
class PlannedShard:
    index: int
    classes: tuple[PlannedClass, ...]

    @property
    def tests(self) -> int:
        return sum(c.tests for c in self.classes)

    @property
    def weight(self) -> float:
        return sum(c.weight for c in self.classes)

    @property
    def estimated_seconds(self) -> float | None:
        if any(c.estimated_seconds is None for c in self.classes):
            return None
        return round(sum(c.estimated_seconds or 0.0 for c in self.classes), 3)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.file for c in self.classes))


def file_units(classes: Sequence[PlannedClass]) -> list[tuple[PlannedClass, ...]]:
    """Classes grouped by the file they come from, in listing order."""
    by_file: dict[str, list[PlannedClass]] = {}
    for planned in classes:
        by_file.setdefault(planned.file, []).append(planned)
    return [tuple(group) for group in by_file.values()]


def pack(classes: Sequence[PlannedClass], shards: int) -> list[PlannedShard]:
    """Longest processing time first: the heaviest file goes to the least-loaded shard, which
    keeps the longest shard within 4/3 of the best possible (Graham's bound), and in practice
    much closer. Each shard keeps its classes in listing order."""
    units = file_units(classes)
    if not 1 <= shards <= len(units):
        raise PlanError(f"cannot pack {len(units)} test file(s) into {shards} shard(s)")
    position = {planned.name: index for index, planned in enumerate(classes)}
    # Heaviest first; ties by listing order, so the same input always gives the same plan.
    ordered = sorted(
        range(len(units)),
        key=lambda u: (-sum(c.weight for c in units[u]), position[units[u][0].name]),
    )
    # (load, files, index): among equal loads the shard with fewer files wins, so files that
    # weigh nothing (0 s in history) still fill empty shards and no shard starts for nothing.
    loads = [(0.0, 0, index) for index in range(shards)]
    heapq.heapify(loads)
    assigned: list[list[PlannedClass]] = [[] for _ in range(shards)]
    for unit in ordered:
        load, count, index = heapq.heappop(loads)
        assigned[index].extend(units[unit])
        heapq.heappush(loads, (load + sum(c.weight for c in units[unit]), count + 1, index))
    return [
        PlannedShard(index, tuple(sorted(members, key=lambda c: position[c.name])))
        for index, members in enumerate(assigned)
    ]


def makespan(shards: Sequence[PlannedShard]) -> float:
    return max((shard.weight for shard in shards), default=0.0)


# ----------------------------------------------------------------------------- plan.json
@dataclass(frozen=True)
class Plan:
    run_id: str
    command: str
    slug: str
    started_at: str
    args: tuple[str, ...]
    shards: tuple[PlannedShard, ...]
    classes_without_history: int
    basis: str
    cap: Cap
    history_runs: int = 0
    placeholders: int = 0  # PHPUnit's own placeholder tests in the listing (split_placeholders)
    # What a shard has before its deadline (None without one: planned on Fargate).
    shard_budget_seconds: float | None = None

    @property
    def tests_total(self) -> int:
        return sum(shard.tests for shard in self.shards)

    def document(self) -> dict[str, Any]:
        """plan.json (issue 13's contract, plus args, basis and cap)."""
        return {
            "version": PLAN_VERSION,
            "run_id": self.run_id,
            "command": self.command,
            "slug": self.slug,
            "started_at": self.started_at,
            "args": list(self.args),
            "shard_count": len(self.shards),
            "tests_total": self.tests_total,
            "classes_without_history": self.classes_without_history,
            "estimate_basis": self.basis,
            "history_runs": self.history_runs,
            "phpunit_placeholders": self.placeholders,
            "shard_budget_seconds": self.shard_budget_seconds,
            "cap": self.cap.as_json(),
            "shards": [
                {
                    "index": shard.index,
                    "estimated_seconds": shard.estimated_seconds,
                    "tests": shard.tests,
                    "classes": [
                        {
                            "name": c.name,
                            "file": c.file,
                            "tests": c.tests,
                            "estimated_seconds": c.estimated_seconds,
                        }
                        for c in shard.classes
                    ],
                }
                for shard in self.shards
            ],
        }

    def summary(self) -> list[dict[str, Any]]:
        """The per-shard lines of the plan event's response."""
        return [
            {
                "index": shard.index,
                "classes": len(shard.classes),
                "tests": shard.tests,
                "estimated_seconds": shard.estimated_seconds,
            }
            for shard in self.shards
        ]


def build_plan(
    *,
    run_id: str,
    command: str,
    slug: str,
    started_at: str,
    args: Sequence[str],
    classes: Sequence[ListedClass],
    files: Mapping[str, str],
    durations: Durations,
    requested: int,
    limits: Limits,
) -> Plan:
    classes, placeholders = split_placeholders(classes)
    estimates = estimate(classes, files, durations)
    cap = shard_cap(requested, len(file_units(estimates.classes)), limits)
    return Plan(
        run_id=run_id,
        command=command,
        slug=slug,
        started_at=started_at,
        args=tuple(args),
        shards=tuple(pack(estimates.classes, cap.applied)),
        classes_without_history=estimates.without_history,
        basis=estimates.basis,
        cap=cap,
        history_runs=durations.runs,
        placeholders=placeholders,
    )


@dataclass(frozen=True)
class ShardAssignment:
    """What one shard runs, read back from plan.json."""

    run_id: str
    command: str
    args: tuple[str, ...]
    count: int
    index: int
    classes: tuple[str, ...]
    files: tuple[str, ...]
    tests: int


def read_shard(raw: bytes, *, run_id: str, command: str, index: int, count: int) -> ShardAssignment:
    """Shard `index` of plan.json, after checking the plan is this run's (the shard event is
    untrusted, and so is whatever sits in the bucket under the key it names)."""
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(f"plan.json is over {MAX_PLAN_BYTES} bytes")
    try:
        plan = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise PlanError("plan.json is not JSON") from None
    if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION:
        raise PlanError(f"plan.json is not a version {PLAN_VERSION} plan")
    if plan.get("run_id") != run_id:
        raise PlanError(
            f"plan.json belongs to run {str(plan.get('run_id'))[:80]!r}, not to {run_id!r}"
        )
    if plan.get("command") != command:
        raise PlanError(f"plan.json is a plan of {str(plan.get('command'))[:80]!r}, not {command}")
    shards = plan.get("shards")
    if plan.get("shard_count") != count or not isinstance(shards, list) or len(shards) != count:
        raise PlanError(
            f"plan.json has {plan.get('shard_count')!r} shard(s); the event says {count}"
        )
    shard = shards[index]
    if not isinstance(shard, dict) or shard.get("index") != index:
        raise PlanError(f"plan.json's shard {index} is malformed")
    entries = shard.get("classes")
    if not isinstance(entries, list) or not entries:
        raise PlanError(f"plan.json's shard {index} has no classes")
    names, files, tests = [], [], 0
    for entry in entries:
        if not isinstance(entry, dict):
            raise PlanError(f"plan.json's shard {index} has a malformed class entry")
        name, count_of = entry.get("name"), entry.get("tests")
        if not isinstance(name, str) or not CLASS_NAME.fullmatch(name):
            raise PlanError(f"plan.json's shard {index} names no PHP class: {str(name)[:120]!r}")
        if isinstance(count_of, bool) or not isinstance(count_of, int) or count_of < 0:
            raise PlanError(f"plan.json's class {name} has no test count")
        names.append(name)
        files.append(check_relative_file(entry.get("file")))
        tests += count_of
    args = plan.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise PlanError("plan.json's args are not a list of strings")
    return ShardAssignment(
        run_id=run_id,
        command=command,
        args=tuple(args),
        count=count,
        index=index,
        classes=tuple(names),
        files=tuple(dict.fromkeys(files)),
        tests=tests,
    )


def repeated_plan_response(
    raw: bytes | None, *, run_id: str, command: str, args: tuple[str, ...], requested: int
) -> dict[str, Any] | None:
    """The plan response again, from the plan.json an earlier attempt of this very request wrote
    (Step Functions retries the Plan step after a Lambda service error, and the first attempt may
    have finished). None when plan.json is not this request's: another run, command, args or
    number of shards requested. The shards check their part again when they run."""
    if raw is None or len(raw) > MAX_PLAN_BYTES:
        return None
    try:
        plan = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION:
        return None
    cap, shards = plan.get("cap"), plan.get("shards")
    same = (plan.get("run_id"), plan.get("command"), plan.get("args")) == (
        run_id,
        command,
        list(args),
    )
    if not same or not isinstance(cap, dict) or cap.get("requested") != requested:
        return None
    if not isinstance(shards, list) or not shards or plan.get("shard_count") != len(shards):
        return None
    summary = []
    for index, shard in enumerate(shards):
        if not isinstance(shard, dict) or shard.get("index") != index:
            return None
        classes, tests = shard.get("classes"), shard.get("tests")
        if not isinstance(classes, list) or isinstance(tests, bool) or not isinstance(tests, int):
            return None
        estimate = shard.get("estimated_seconds")
        if estimate is not None and (
            isinstance(estimate, bool) or not isinstance(estimate, int | float)
        ):
            return None
        summary.append(
            {"index": index, "classes": len(classes), "tests": tests, "estimated_seconds": estimate}
        )
    return {
        "shard_count": len(summary),
        "shards": summary,
        "tests_total": sum(row["tests"] for row in summary),
        "classes_without_history": plan.get("classes_without_history"),
        "estimate_basis": plan.get("estimate_basis"),
        "cap": {key: cap.get(key) for key in ("requested", "applied", "reason")},
        "phpunit_placeholders": plan.get("phpunit_placeholders"),
        "shard_budget_seconds": _seconds(plan.get("shard_budget_seconds")),
    }


def _seconds(value: Any) -> float | None:
    """A JSON number of seconds, else None: compared before float(), so a 400-digit integer is
    junk, not an OverflowError; NaN and infinity fail the comparison."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and 0 <= value <= MAX_SECONDS else None
