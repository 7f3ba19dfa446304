"""One report's history, start to finish: the only module of the core that touches a store.

    session = HistorySession.open(store, scope, run_info, config)   # before parsing
    parser(..., on_case=session.on_case)                            # per testcase
    section = session.finish(messages)                              # after parsing

`finish` writes the run (rows, digest, failing set, then run.json: the commit point), adds it to
the index with a conditional write, and compares it with earlier runs by start time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from report_processor.history import keys
from report_processor.history.analysis import (
    ABSENT,
    DiffHashes,
    FlakyVerdict,
    Observations,
    case_history,
    diff,
    flaky,
    flaky_window,
    observe,
)
from report_processor.history.durations import (
    classes_document,
    durations_document,
    keep_newer,
    parse_classes,
)
from report_processor.history.keys import HistoryScope
from report_processor.history.quarantine import QuarantineList, parse_quarantine
from report_processor.history.records import (
    HistoryConfig,
    RunIndex,
    RunInfo,
    RunRecord,
    failed_wholesale,
    index_document,
    iso,
    parse_index,
    upsert,
)
from report_processor.history.rows import (
    ERROR,
    FAILED,
    OUTCOME_MASK,
    PASSED,
    SKIPPED,
    Digest,
    HistoryDataError,
    RecordedRun,
    RunRecorder,
    dump_digest,
    is_failing,
    load_digest,
    outcome_name,
    resolve_names,
)
from report_processor.history.section import (
    Counts,
    FailingTest,
    FlakyTestInfo,
    HistorySection,
    QuarantinedTest,
    RunRef,
    headline,
    notification,
)
from report_processor.history.storage import (
    HistoryStore,
    ObjectTooLarge,
    read_json,
    update_json,
)

MAX_DIGEST_BYTES = 64 << 20  # 7 million tests


def load_index(store: HistoryStore, scope: HistoryScope, max_runs: int = 400) -> RunIndex:
    """The index; rebuilt from the per-run run.json objects when index.json is missing."""
    document = read_json(store, keys.index_key(scope))
    if document is not None:
        return parse_index(document)
    return rebuild_index(store, scope, max_runs)


def rebuild_index(store: HistoryStore, scope: HistoryScope, max_runs: int) -> RunIndex:
    run_keys = [
        run_key
        for key in store.list_keys(keys.runs_prefix(scope))
        if (run_key := keys.run_key_from_record_key(scope, key)) is not None
    ]
    records = []
    for run_key in sorted(run_keys)[-max_runs:]:
        record = RunRecord.from_json(read_json(store, keys.run_record_key(scope, run_key)))
        if record is not None and record.run_key == run_key:
            records.append(record)
    return parse_index(index_document(RunIndex(tuple(records))))


def load_run_digest(
    store: HistoryStore, scope: HistoryScope, run_key: str, failing_only: bool = False
) -> Digest | None:
    key = keys.failing_key(scope, run_key) if failing_only else keys.digest_key(scope, run_key)
    try:
        blob = store.get(key, MAX_DIGEST_BYTES)
        return None if blob is None else load_digest(blob.data, key)
    except (ObjectTooLarge, HistoryDataError):
        return None


def ref(record: RunRecord) -> RunRef:
    return RunRef(record.run_id, record.run_key, record.started_at, record.app_version)


@dataclass(frozen=True)
class _Names:
    known: dict[int, str]

    def get(self, hashed: int) -> str:
        return self.known.get(hashed) or f"#{hashed:016x}"


@dataclass(frozen=True)
class _Baseline:
    """The run this one is diffed against, with its digest and failing set."""

    record: RunRecord
    digest: Digest
    failing: Digest


@dataclass(frozen=True)
class _Findings:
    """What comparing the run found, by hash (names are resolved afterwards)."""

    previous: RunRecord | None
    baseline: RunRecord | None
    tests_before: int | None
    hashes: DiffHashes
    listed_new: list[int]
    listed_still: list[int]
    observations: Observations  # of the listed failing tests and the flaky candidates
    verdicts: list[FlakyVerdict]
    notes: list[str]


def _listed_failing(
    recorded: RecordedRun, hashes: DiffHashes, max_listed: int
) -> tuple[list[int], list[int]]:
    """The new and still failing tests the report lists."""

    # Per-test history for the failing tests the report lists (by name; failing tests keep
    # their names in the recorder), not for every failing test of an outage.
    def failing_name(hashed: int) -> str:
        return recorded.names.get(hashed) or f"#{hashed:016x}"

    listed_new = sorted(hashes.new_failures, key=failing_name)[:max_listed]
    listed_still = sorted(hashes.still_failing, key=failing_name)[:max_listed]
    return listed_new, listed_still


@dataclass(frozen=True)
class _FailingTests:
    """Rows of the new / still failing tables: a tracked test's history, else this run alone."""

    names: _Names
    digest: Digest
    observations: Observations
    history_limit: int
    messages: Mapping[str, str]

    def rows(self, hashes: Iterable[int]) -> tuple[FailingTest, ...]:
        position = {hashed: i for i, hashed in enumerate(self.observations.tracked)}
        return tuple(self.row(h, position) for h in sorted(hashes, key=self.names.get))

    def row(self, hashed: int, position: Mapping[int, int]) -> FailingTest:
        text = self.names.get(hashed)
        code = self.digest.code_of(hashed) or FAILED
        message = _first_line(self.messages.get(text, ""))
        if hashed not in position:
            return FailingTest(text, outcome_name(code), message, 1, 1, None, None, False)
        past = case_history(position[hashed], self.observations, self.history_limit)
        since = past.failing_since
        return FailingTest(
            test_id=text,
            outcome=outcome_name(code),
            message=message,
            failed_runs=past.failed_runs,
            of_runs=past.of_runs,
            last_passed=ref(past.last_passed) if past.last_passed else None,
            failing_since=ref(since) if since else None,
            since_is_lower_bound=past.since_is_lower_bound,
        )


class HistorySession:
    def __init__(
        self,
        store: HistoryStore,
        scope: HistoryScope,
        run: RunInfo,
        config: HistoryConfig,
        quarantine: QuarantineList,
        index: RunIndex,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.scope = scope
        self.run = run
        self.config = config
        self.quarantine = quarantine
        self.index_at_open = index
        self.clock = clock
        self.run_key = keys.make_run_key(run.started_at, run.run_id)
        baseline = index.baseline(self.run_key)
        hint = load_run_digest(store, scope, baseline.run_key, True) if baseline else None
        self._active = quarantine.active(run.started_at)
        self.recorder = RunRecorder(
            app_roots=config.app_roots,
            quarantined=self._active,
            want_names=hint.hashes if hint is not None else (),
            max_names=config.max_tracked_failures * 10,
            compress_level=config.compress_level,
        )
        self.on_case = self.recorder.on_case

    @classmethod
    def open(
        cls,
        store: HistoryStore,
        scope: HistoryScope,
        run: RunInfo,
        config: HistoryConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> HistorySession:
        config = config or HistoryConfig()
        quarantine = parse_quarantine(
            read_json(store, keys.quarantine_key(scope.project, scope.environment)),
            config.quarantine_max_days,
        )
        index = load_index(store, scope, config.index_max_runs)
        return cls(store, scope, run, config, quarantine, index, clock)

    def discard(self) -> None:
        """Drop what was recorded (the parse failed halfway): nothing is written."""
        self.recorder.discard()

    # -- writing -------------------------------------------------------------------------------

    def _record(self, recorded: RecordedRun) -> RunRecord:
        run = self.run
        passed, skipped, failed, errors = recorded.outcomes
        protected_failing = sum(1 for code in recorded.quarantined.values() if is_failing(code))
        wholesale = failed_wholesale(
            recorded.cases, skipped, failed + errors, run.runner_status, self.config
        )
        if recorded.cases == 0:
            status = "error" if run.runner_status not in (None, "passed") else "no_tests"
        elif failed + errors - protected_failing > 0:
            status = "failed"
        else:
            status = "passed"
        return RunRecord(
            run_key=self.run_key,
            run_id=run.run_id,
            started_at=iso(run.started_at),
            status=status,
            tests=recorded.cases,
            passed=passed,
            failed=failed,
            errors=errors,
            skipped=skipped,
            flaky=recorded.flaky,
            unique_tests=len(recorded.digest),
            app_version=run.app_version,
            image_version=run.image_version,
            runner_status=run.runner_status,
            wholesale=wholesale is not None,
            wholesale_reason=wholesale,
            recorded_at=iso(self.clock()),
        )

    def _write(self, recorded: RecordedRun, record: RunRecord) -> RunIndex:
        store, scope = self.store, self.scope
        store.put_stream(keys.rows_key(scope, self.run_key), recorded.rows, "application/gzip")
        store.put(keys.digest_key(scope, self.run_key), dump_digest(recorded.digest))
        store.put(keys.failing_key(scope, self.run_key), dump_digest(recorded.failing))
        store.put(
            keys.classes_key(scope, self.run_key),
            classes_document(recorded.class_seconds),
            content_type="application/json",
        )
        store.put(
            keys.run_record_key(scope, self.run_key),
            json.dumps(record.to_json(), sort_keys=True).encode(),
            content_type="application/json",
        )
        seed = self.index_at_open
        max_runs = self.config.index_max_runs

        def change(document: object) -> dict[str, object]:
            # No index yet (first run, or deleted): start from what listing found at open.
            return upsert(
                document if document is not None else index_document(seed), record, max_runs
            )

        return parse_index(update_json(store, keys.index_key(scope), change))

    # -- comparing -----------------------------------------------------------------------------

    def finish(self, messages: Mapping[str, str] | None = None) -> HistorySection:
        """Record the run and compare it; `messages` maps test id -> failure message."""
        recorded = self.recorder.finish()
        try:
            record = self._record(recorded)
            index = self._write(recorded, record)
            section = self._compare(recorded, record, index, messages or {})
        finally:
            recorded.rows.close()
        try:
            self._update_durations(index, record, recorded.class_seconds)
        except Exception as error:  # noqa: BLE001 (advisory: the planner falls back to counts)
            note = f"durations.json not updated: {error}"
            section = replace(section, notes=(*section.notes, note))
        return section

    def _update_durations(
        self, index: RunIndex, record: RunRecord, ours: Mapping[str, float]
    ) -> None:
        """durations.json from the newest runs that did not fail wholesale (conditional put)."""
        used: list[Mapping[str, float]] = []
        newest = ""
        for run in reversed(index.runs):
            if len(used) >= self.config.durations_runs:
                break
            if run.wholesale:
                continue
            if run.run_key == record.run_key:
                classes: Mapping[str, float] = ours
            else:
                classes = parse_classes(
                    read_json(self.store, keys.classes_key(self.scope, run.run_key))
                )
            if classes:
                used.append(classes)
                newest = max(newest, run.run_key)
        if not used:
            return
        proposed = durations_document(used, newest, self.clock())
        scope = self.scope
        key = keys.durations_key(scope.project, scope.environment, scope.command_slug)
        update_json(self.store, key, lambda current: keep_newer(current, proposed))

    def _compare(
        self,
        recorded: RecordedRun,
        record: RunRecord,
        index: RunIndex,
        messages: Mapping[str, str],
    ) -> HistorySection:
        found = self._find(recorded, record, index)
        section = self._section(recorded, record, index, found, messages)
        section = replace(section, headline=headline(section))
        return replace(
            section,
            notification=notification(
                section, self.scope.project, self.scope.command_slug, self.scope.environment
            ),
        )

    def _find(self, recorded: RecordedRun, record: RunRecord, index: RunIndex) -> _Findings:
        """The comparison by hash: the diff with the baseline, the listed failing tests'
        observations and the flaky verdicts. Names come later, for the listed tests only."""
        config = self.config
        notes: list[str] = list(self.quarantine.problems)
        previous = index.previous(self.run_key)
        base = self._load_baseline(index, previous, notes)
        hashes = self._diff(recorded, base)

        earlier = index.before(self.run_key)
        window = flaky_window(earlier, self.run.started_at, config)
        history_runs = earlier[: config.history_runs - 1]
        listed_new, listed_still = _listed_failing(recorded, hashes, config.max_listed)
        candidates = self._flaky_candidates(recorded, record, window)
        tracked = list(dict.fromkeys([*listed_new, *listed_still, *candidates]))
        loaded = {base.record.run_key: base.digest} if base is not None else {}
        obs = self._observe(tracked, recorded, record, history_runs, window, loaded)
        baseline = base.record if base is not None else None
        tests_before = len(base.digest) if base is not None else None
        del loaded, base  # one digest in memory at a time from here

        verdicts = self._flaky_verdicts(obs, candidates, window, record)
        if recorded.duplicates:
            notes.append(
                f"{recorded.duplicates} testcases repeat an earlier test id in this run; each id "
                "counts once in history (its worst outcome)"
            )
        return _Findings(
            previous, baseline, tests_before, hashes, listed_new, listed_still, obs, verdicts, notes
        )

    def _load_baseline(
        self, index: RunIndex, previous: RunRecord | None, notes: list[str]
    ) -> _Baseline | None:
        """The run to diff against and its digests; None (and a note) when they are unreadable."""
        baseline = index.baseline(self.run_key)
        if previous is not None and baseline is not None and previous.run_key != baseline.run_key:
            notes.append(
                f"previous run {previous.run_id} failed wholesale ({previous.wholesale_reason}); "
                f"compared with {baseline.run_id}"
            )
        if baseline is None:
            return None
        base_digest = load_run_digest(self.store, self.scope, baseline.run_key)
        base_failing = load_run_digest(self.store, self.scope, baseline.run_key, True)
        if base_digest is None or base_failing is None:
            notes.append(f"the history of run {baseline.run_id} is unreadable: no diff")
            return None
        return _Baseline(baseline, base_digest, base_failing)

    def _diff(self, recorded: RecordedRun, base: _Baseline | None) -> DiffHashes:
        if base is None:
            return DiffHashes()
        return diff(
            recorded.digest,
            recorded.failing,
            base.digest,
            base.failing,
            self.config.max_listed,
            keep=self.config.max_tracked_failures,
            exclude=self._active,
        )

    def _flaky_verdicts(
        self,
        obs: Observations,
        candidates: Sequence[int],
        window: Sequence[RunRecord],
        record: RunRecord,
    ) -> list[FlakyVerdict]:
        """The candidates' codes in the window runs (and in this run, unless it failed
        wholesale), judged."""
        position = {hashed: i for i, hashed in enumerate(obs.tracked)}
        flaky_runs = {run.run_key for run in window}
        if not record.wholesale:
            flaky_runs.add(record.run_key)
        keep = [i for i, run in enumerate(obs.runs) if run.run_key in flaky_runs]
        flaky_obs = Observations(
            tuple(candidates),
            tuple(obs.runs[i] for i in keep),
            tuple(bytes(obs.codes[i][position[h]] for h in candidates) for i in keep),
        )
        return flaky(flaky_obs, self.config, self.run.started_at) if candidates else []

    def _section(
        self,
        recorded: RecordedRun,
        record: RunRecord,
        index: RunIndex,
        found: _Findings,
        messages: Mapping[str, str],
    ) -> HistorySection:
        """The findings with names: the section the summary shows (headline not set yet)."""
        listed = self.config.max_listed
        hashes, verdicts = found.hashes, found.verdicts
        previous, baseline = found.previous, found.baseline
        names = self._listed_names(recorded, found)
        failing = _FailingTests(
            names, recorded.digest, found.observations, self.config.history_runs, messages
        )
        quarantine = self._quarantine_rows(recorded)
        tests_before = found.tests_before
        return HistorySection(
            run=ref(record),
            status=record.status,
            previous=ref(previous) if previous else None,
            previous_status=previous.status if previous else None,
            baseline=ref(baseline) if baseline else None,
            superseded=bool(index.newer_than(self.run_key)),
            wholesale_reason=record.wholesale_reason,
            tests=len(recorded.digest),
            tests_before=tests_before,
            tests_dropped=tests_before is not None and len(recorded.digest) < tests_before,
            pass_rate=_pass_rate(recorded),
            counts=self._counts(recorded, hashes, len(verdicts), quarantine),
            new_failures=failing.rows(found.listed_new),
            still_failing=failing.rows(found.listed_still),
            fixed=tuple(sorted(names.get(h) for h in hashes.fixed[:listed])),
            new_tests=tuple(sorted(names.get(h) for h in hashes.new_test_sample)),
            disappeared=tuple(sorted(names.get(h) for h in hashes.disappeared_sample)),
            flaky=tuple(
                FlakyTestInfo(names.get(v.hashed), v.flips, v.runs, v.rule, v.app_version)
                for v in verdicts[:listed]
            ),
            quarantine=quarantine,
            notes=tuple(found.notes),
            duplicates=recorded.duplicates,
        )

    def _listed_names(self, recorded: RecordedRun, found: _Findings) -> _Names:
        """Ids of the tests the section lists."""
        listed = self.config.max_listed
        hashes = found.hashes
        return self._names(
            recorded,
            found.baseline,
            [
                *found.listed_new,
                *found.listed_still,
                *hashes.fixed[:listed],
                *hashes.new_test_sample,
                *(v.hashed for v in found.verdicts[:listed]),
            ],
            hashes.disappeared_sample,
        )

    def _counts(
        self,
        recorded: RecordedRun,
        hashes: DiffHashes,
        flaky_count: int,
        quarantine: Sequence[QuarantinedTest],
    ) -> Counts:
        active = self._active
        failing_now = sum(
            1
            for hashed, code in zip(recorded.failing.hashes, recorded.failing.codes, strict=True)
            if is_failing(code) and hashed not in active
        )
        return Counts(
            failing=failing_now,
            new_failures=hashes.new_failure_count,
            fixed=hashes.fixed_count,
            still_failing=hashes.still_failing_count,
            new_tests=hashes.new_tests,
            disappeared=hashes.disappeared,
            flaky=flaky_count,
            quarantined=sum(1 for q in quarantine if q.state == "active" and q.outcome is not None),
            quarantine_expired=sum(1 for q in quarantine if q.state == "expired"),
        )

    def _flaky_candidates(
        self, recorded: RecordedRun, record: RunRecord, window: Sequence[RunRecord]
    ) -> list[int]:
        """Tests that failed (or were flaky within a run) in a window run: the only ones that
        can be flaky. Runs that failed wholesale are not in the window and add none."""
        limit = self.config.max_flaky_candidates
        found: dict[int, None] = {}
        sources: list[Digest] = [] if record.wholesale else [recorded.failing]
        for run in window:
            failing = load_run_digest(self.store, self.scope, run.run_key, True)
            if failing is not None:
                sources.append(failing)
        for source in sources:
            for hashed in source.hashes:
                found[hashed] = None
                if len(found) >= limit:
                    return list(found)
        return list(found)

    def _observe(
        self,
        tracked: Sequence[int],
        recorded: RecordedRun,
        record: RunRecord,
        history_runs: Sequence[RunRecord],
        window: Sequence[RunRecord],
        loaded: Mapping[str, Digest],
    ) -> Observations:
        """Codes of the tracked tests in this run and the needed earlier runs, newest first;
        one digest in memory at a time."""
        wanted = {run.run_key for run in history_runs} | {run.run_key for run in window}
        runs: list[RunRecord] = [record]
        codes: list[bytes] = [observe(tracked, recorded.digest)]
        if tracked:
            for run in self.index_runs_newest_first(wanted, history_runs, window):
                digest = loaded.get(run.run_key)
                if digest is None:
                    digest = load_run_digest(self.store, self.scope, run.run_key)
                if digest is None:
                    continue
                runs.append(run)
                codes.append(observe(tracked, digest))
        return Observations(tuple(tracked), tuple(runs), tuple(codes))

    @staticmethod
    def index_runs_newest_first(wanted: set[str], *groups: Sequence[RunRecord]) -> list[RunRecord]:
        by_key = {run.run_key: run for group in groups for run in group if run.run_key in wanted}
        return [by_key[key] for key in sorted(by_key, reverse=True)]

    def _names(
        self,
        recorded: RecordedRun,
        baseline: RunRecord | None,
        current_wanted: Iterable[int],
        baseline_wanted: Iterable[int],
    ) -> _Names:
        """Ids for hashes: from what the recorder kept, else one pass over tonight's rows, else
        one over the baseline's rows (disappeared tests)."""
        known = dict(recorded.names)
        missing = {h for h in current_wanted if h not in known}
        in_current = {h for h in missing if recorded.digest.code_of(h) is not None}
        if in_current:
            recorded.rows.seek(0)
            known.update(resolve_names(recorded.rows, in_current, "tonight's rows"))
        rest = (missing - in_current) | {h for h in baseline_wanted if h not in known}
        if rest and baseline is not None:
            stream = self.store.open(keys.rows_key(self.scope, baseline.run_key))
            if stream is not None:
                try:
                    known.update(resolve_names(stream, rest, baseline.run_key))
                except HistoryDataError:
                    pass
                finally:
                    stream.close()
        return _Names(known)

    def _quarantine_rows(self, recorded: RecordedRun) -> tuple[QuarantinedTest, ...]:
        from report_processor.history.testid import id_hash

        rows = []
        for entry in self.quarantine.entries:
            state = entry.state(self.run.started_at)
            if state not in ("active", "expired"):
                continue
            code = recorded.digest.code_of(id_hash(entry.test_id))
            rows.append(
                QuarantinedTest(
                    test_id=entry.test_id,
                    reason=entry.reason,
                    owner=entry.owner,
                    added=entry.added,
                    expires=entry.expires,
                    state=state,
                    outcome=None if code is None else outcome_name(code),
                )
            )
        return tuple(rows)


def _pass_rate(recorded: RecordedRun) -> float | None:
    """Passed / ran, leaving out the tests an active quarantine entry protects."""
    passed, skipped, failed, errors = recorded.outcomes
    for code in recorded.quarantined.values():
        outcome = code & OUTCOME_MASK
        if outcome == PASSED:
            passed -= 1
        elif outcome == SKIPPED:
            skipped -= 1
        elif outcome == FAILED:
            failed -= 1
        elif outcome == ERROR:
            errors -= 1
    runnable = passed + failed + errors
    return None if runnable <= 0 else passed / runnable


def _first_line(message: str) -> str:
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


__all__ = ["ABSENT", "HistorySession", "load_index", "load_run_digest", "rebuild_index"]
