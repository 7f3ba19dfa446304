"""Benchmark: per-test history (report_processor/history) at 10,000 and 1,000,000 tests.

    .venv/bin/python bench/history_bench.py [--tests 10000] [--runs 30] [--million 1000000]
        [--parts 10k,1m,parse,wired10k,wired1m,parsehist,junitparser]

Every measurement runs in a fresh subprocess (peak RSS = that child's own high-water mark):

- 10k: one child writes `--runs` nights of `--tests` PHPUnit-shaped tests (1 % broken per
  release of 5 nights, 0.1 % flaky, one test renamed per night) into a directory-backed store;
  a fresh child then times the next night: open + one `on_case` per test + finish (rows, digest,
  index, diff, per-test history, flakiness). A third child times the same loop with a no-op
  callback: the difference is what history adds to a report. Goal: <= 2 s, <= 256 MiB.
- 1m: the same with `--million` tests and one earlier night (the diff at that size).
- parse: the current streaming parser on a `--million` PHPUnit-shaped file, for scale;
  with `junitparser` in `--parts`, also junitparser on the same file (the 1M goal's yardstick).
- wired10k / wired1m: the same nights as JUnit files through the deployed code path,
  `process.process_object` (parse with `on_case`, history finish, both summaries, reports/latest/,
  marker, metrics), on a directory-backed results bucket and history store: `--runs` (10k) or
  one (1M) earlier nights, then the next night timed with history and, in another child, the
  same object with history off. With `junitparser` in `--parts`, junitparser on the 1M file.
- parsehist: the parser with history's `on_case` on that file, then `finish`, as the report
  processor runs them: a first night, then the timed second night (diff against the first).

The stores are local directories, so S3 transfer time is not included.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, BinaryIO

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from report_processor.history.keys import HistoryScope  # noqa: E402
from report_processor.history.records import HistoryConfig, RunInfo  # noqa: E402
from report_processor.history.rows import ERROR, FAILED, PASSED, SKIPPED  # noqa: E402
from report_processor.history.session import HistorySession  # noqa: E402
from report_processor.history.storage import Blob, ObjectTooLarge, PreconditionFailed  # noqa: E402

SCOPE = HistoryScope("bench", "prod", "test")
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


class DirStore:
    """HistoryStore on a directory (ETag = content hash; conditional puts under a file lock)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = root / ".lock"
        root.mkdir(parents=True, exist_ok=True)
        self.lock.touch()

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str, max_bytes: int) -> Blob | None:
        path = self._path(key)
        if not path.exists():
            return None
        data = path.read_bytes()
        if len(data) > max_bytes:
            raise ObjectTooLarge(key)
        return Blob(data, hashlib.md5(data).hexdigest())  # noqa: S324 (an ETag, as S3's)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "",
    ) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock.open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            exists = path.exists()
            if if_none_match and exists:
                raise PreconditionFailed(key)
            if if_match is not None and (
                not exists or hashlib.md5(path.read_bytes()).hexdigest() != if_match  # noqa: S324
            ):
                raise PreconditionFailed(key)
            path.write_bytes(data)
        return hashlib.md5(data).hexdigest()  # noqa: S324

    def open(self, key: str) -> IO[bytes] | None:
        path = self._path(key)
        return path.open("rb") if path.exists() else None

    def put_stream(self, key: str, stream: IO[bytes], content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)

    def list_keys(self, prefix: str) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield key

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def cases(tests: int, night: int, seed: int) -> Iterator[tuple[str, str, str, int, float, bool]]:
    """PHPUnit-shaped testcases (50 per class, a fifth of them data sets) for one night."""
    rng = random.Random(seed * 1_000_003 + night)
    per_class = 50
    for index in range(tests):
        klass = index // per_class
        file = f"/var/task/app/tests/Feature/Module{klass % 97}/Endpoint{klass}Test.php"
        cls = f"Tests\\Feature\\Module{klass % 97}\\Endpoint{klass}Test"
        slot = index % per_class
        if slot >= 40:
            name = f"test_validates_payload with data set #{slot - 40}"
        elif slot == 0 and klass % 100 == 7:
            name = f"test_renamed_night_{night}"  # renamed every night: one new, one gone
        else:
            name = f"test_case_{slot}"
        roll = rng.random()
        flaky = False
        # 1 % of the tests are broken for a release (5 nights, one app version), 0.1 % flaky.
        broken = (index * 7919 + night // 5) % 100 == 0
        if index % 997 == 5:
            outcome = FAILED if roll < 0.5 else PASSED
        elif broken:
            outcome = ERROR if index % 5 == 0 else FAILED
        elif roll < 0.004:
            outcome = SKIPPED
        else:
            outcome = PASSED
            flaky = roll > 0.9998
        yield file, cls, name, outcome, rng.random() * 0.05, flaky


def night(store: DirStore, tests: int, number: int, seed: int, config: HistoryConfig) -> dict:
    version = f"v{number // 5}"
    info = RunInfo(f"run{number:03d}", START + timedelta(days=number), version, "img1", "failed")
    started = time.perf_counter()
    session = HistorySession.open(store, SCOPE, info, config)
    on_case = session.on_case
    for file, cls, name, outcome, seconds, flaky in cases(tests, number, seed):
        on_case(file, cls, name, outcome, seconds, flaky)
    fed = time.perf_counter()
    section = session.finish({})
    done = time.perf_counter()
    return {
        "open_and_cases_s": round(fed - started, 3),
        "finish_s": round(done - fed, 3),
        "total_s": round(done - started, 3),
        "headline": section.headline,
        "tests": section.tests,
    }


def loop_only(tests: int, number: int, seed: int) -> float:
    started = time.perf_counter()
    sink = [0]

    def no_op(*_args: object) -> None:
        sink[0] += 1

    for file, cls, name, outcome, seconds, flaky in cases(tests, number, seed):
        no_op(file, cls, name, outcome, seconds, flaky)
    return time.perf_counter() - started


def sizes(store: DirStore, suffix: str) -> int:
    found = [
        (store.root / key).stat().st_size
        for key in store.list_keys(SCOPE.prefix)
        if key.endswith(suffix)
    ]
    return max(found) if found else 0


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class DirResults:
    """process.Storage on a directory (the results bucket: runs/, reports/, markers)."""

    def __init__(self, root: Path) -> None:
        self.store = DirStore(root)

    def exists(self, key: str) -> bool:
        return self.store._path(key).exists()

    def read_json(self, key: str, max_bytes: int) -> object:
        return self.read_json_with_etag(key, max_bytes)[0]

    def read_json_with_etag(self, key: str, max_bytes: int) -> tuple[object, str | None]:
        blob = self.store.get(key, max_bytes)
        return (None, None) if blob is None else (json.loads(blob.data), blob.etag)

    def open_object(self, key: str, version_id: str | None, max_bytes: int) -> BinaryIO | None:
        path = self.store._path(key)
        return path.open("rb") if path.exists() else None

    def put_text(self, key: str, text: str, content_type: str) -> None:
        self.store.put(key, text.encode())

    def put_text_if(self, key: str, text: str, content_type: str, etag: str | None) -> bool:
        try:
            self.store.put(key, text.encode(), if_match=etag, if_none_match=etag is None)
        except PreconditionFailed:
            return False
        return True

    def etag(self, key: str) -> str | None:
        blob = self.store.get(key, 1 << 30)
        return None if blob is None else blob.etag

    def claim(self, key: str, body: str) -> bool:
        return self.put_text_if(key, body, "application/json", None)


def write_junit(path: Path, tests: int, number: int, seed: int) -> None:
    """One night of `cases` as a PHPUnit 9-shaped JUnit file (one suite per class)."""
    from xml.sax.saxutils import quoteattr

    results = {FAILED: '<failure type="F">trace</failure>', ERROR: '<error type="E">trace</error>',
               SKIPPED: "<skipped/>"}  # fmt: skip
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n')
        current = None
        for file, cls, name, outcome, seconds, flaky in cases(tests, number, seed):
            if cls != current:
                if current is not None:
                    out.write("</testsuite>\n")
                out.write(f"<testsuite name={quoteattr(cls)} file={quoteattr(file)}>\n")
                current = cls
            inner = results.get(outcome, '<flakyFailure type="F"/>' if flaky else "")
            out.write(
                f"<testcase name={quoteattr(name)} class={quoteattr(cls)} "
                f"classname={quoteattr(cls.replace(chr(92), '.'))} file={quoteattr(file)} "
                f'assertions="1" time="{seconds:.6f}">{inner}</testcase>\n'
            )
        out.write("</testsuite>\n</testsuites>\n" if current else "</testsuites>\n")


def wired_night(
    root: Path, tests: int, number: int, history: bool, given: Path | None = None
) -> dict:
    """One night through process_object; the JUnit file (`given`, else generated) is put in
    place first (not timed)."""
    from report_processor.config import ProcessorConfig
    from report_processor.process import S3Record, process_object

    results = DirResults(root / "bucket")
    started_at = START + timedelta(days=number)
    run_id = f"run{number:03d}"
    prefix = f"runs/{started_at:%Y-%m-%d}/{run_id}/test/"
    junit = root / "bucket" / prefix / "junit.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    if given is not None and not junit.exists():
        junit.symlink_to(given.resolve())
    if not junit.exists():
        write_junit(junit, tests, number, seed=1)
    if not results.exists(prefix + "manifest.json"):
        manifest = {
            "run_id": run_id,
            "command": "test",
            "status": "failed",
            "started_at": started_at.isoformat(),
            "app_version": f"v{number // 5}",
        }
        results.put_text(prefix + "manifest.json", json.dumps(manifest), "application/json")
    config = ProcessorConfig("bench", "prod")
    startup = peak_mib()
    began, cpu = time.perf_counter(), time.process_time()
    outcome = process_object(
        S3Record("bench", prefix + "junit.xml", None, f"{run_id}-{history}"),
        results,
        config,
        history=DirStore(root / "history") if history else None,
    )
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    report_prefix = outcome.report_prefix or ""
    summary = json.loads((root / "bucket" / report_prefix / "summary.json").read_text())
    section = summary.get("history") or {}
    return {"process_object_s": round(elapsed, 3), "process_object_cpu_s": round(cpu, 3),
            "startup_rss_mib": startup,
            "history": outcome.history, "headline": section.get("headline"),
            "junit_bytes": junit.stat().st_size}  # fmt: skip


def child(args: argparse.Namespace) -> dict:
    config = HistoryConfig()
    if args.child == "wired-build":
        for number in range(1, args.runs + 1):
            wired_night(Path(args.store), args.tests, number, history=True)
        return {"nights": args.runs}
    if args.child == "wired-file":
        # report_processor_bench.py: its own generated file, as night `--runs` + 1, with history.
        return wired_night(Path(args.store), 0, args.runs + 1, True, Path(args.junit))
    if args.child in ("wired-history", "wired-plain"):
        history = args.child == "wired-history"
        return wired_night(Path(args.store), args.tests, args.runs + 1, history)
    parsing = args.child in ("parse", "parsehist")
    store = DirStore(Path(args.store)) if args.store and not parsing else None
    if args.child == "build":
        assert store is not None
        for number in range(1, args.runs + 1):
            night(store, args.tests, number, seed=1, config=config)
        return {"nights": args.runs, "rows_gz_bytes": sizes(store, "rows.tsv.gz"),
                "digest_bytes": sizes(store, "digest.bin")}  # fmt: skip
    if args.child == "measure":
        assert store is not None
        startup = peak_mib()
        result = night(store, args.tests, args.runs + 1, seed=1, config=config)
        return result | {"startup_rss_mib": startup}
    if args.child == "loop":
        return {"loop_s": round(loop_only(args.tests, args.runs + 1, seed=1), 3)}
    from report_processor.parse import parse_junit

    if args.child == "parsehist":
        return parse_with_history(Path(args.store), args.runs)
    startup = peak_mib()
    started = time.perf_counter()
    with Path(args.store).open("rb") as stream:
        acc = parse_junit(stream)
    return {"cases": acc.tests, "parse_s": round(time.perf_counter() - started, 2),
            "startup_rss_mib": startup}  # fmt: skip


def parse_with_history(report: Path, nights: int) -> dict:
    """What the report processor does with history: parse with on_case, then finish.

    The store (next to the report) first gets `nights - 1` earlier nights of the same file, so
    the measured night has a baseline to diff against; only the last night is timed.
    """
    from report_processor.parse import parse_junit

    store = DirStore(report.parent / "store")
    config = HistoryConfig()
    startup = peak_mib()
    result: dict = {}
    for number in range(1, nights + 1):
        info = RunInfo(f"run{number:03d}", START + timedelta(days=number), "v1", "img1", "failed")
        started = time.perf_counter()
        session = HistorySession.open(store, SCOPE, info, config)
        with report.open("rb") as stream:
            acc = parse_junit(stream, on_case=session.on_case)
        parsed = time.perf_counter()
        section = session.finish({})
        done = time.perf_counter()
        result = {
            "cases": acc.tests,
            "history_tests": section.tests,
            "parse_with_on_case_s": round(parsed - started, 2),
            "finish_s": round(done - parsed, 2),
            "total_s": round(done - started, 2),
        }
    return result | {"nights": nights, "startup_rss_mib": startup}


def run_child(kind: str, tests: int, runs: int, store: str = "") -> dict:
    command = [sys.executable, __file__, "--child", kind, "--tests", str(tests),
               "--runs", str(runs), "--store", store]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        raise SystemExit(f"{kind} failed: {completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout))


def scenario(tests: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="history-bench-") as scratch:
        built = run_child("build", tests, runs, scratch)
        measured = run_child("measure", tests, runs, scratch)
    loop = run_child("loop", tests, runs)
    added = measured["total_s"] - loop["loop_s"]
    return {
        "tests": tests,
        "earlier_runs": runs,
        **built,
        "next_night": measured,
        "loop_without_history_s": loop["loop_s"],
        "added_by_history_s": round(added, 2),
    }


def wired(tests: int, runs: int, baseline: bool) -> dict:
    """The next night through process_object, with and without history, same object."""
    with tempfile.TemporaryDirectory(prefix="history-bench-") as scratch:
        run_child("wired-build", tests, runs, scratch)
        plain = run_child("wired-plain", tests, runs, scratch)  # also writes tonight's file
        with_history = run_child("wired-history", tests, runs, scratch)
        result = {
            "tests": tests,
            "earlier_runs": runs,
            "with_history": with_history,
            "without_history": plain,
            "added_by_history_s": round(
                with_history["process_object_s"] - plain["process_object_s"], 2
            ),
            "added_by_history_cpu_s": round(
                with_history["process_object_cpu_s"] - plain["process_object_cpu_s"], 2
            ),
        }
        if baseline:
            from report_processor_bench import BASELINE_SCRIPT

            junit = next(
                Path(scratch, "bucket", "runs").glob(f"*/run{runs + 1:03d}/test/junit.xml")
            )
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(junit)], check=True,
                           capture_output=True)  # fmt: skip
            result["junitparser_s"] = round(time.perf_counter() - started, 2)
            result["ratio_with_history"] = round(
                with_history["process_object_s"] / result["junitparser_s"], 3
            )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--million", type=int, default=1_000_000)
    # Also: wired1m, parsehist, junitparser.
    parser.add_argument("--parts", default="10k,1m,parse,wired10k")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--store", default="", help=argparse.SUPPRESS)
    parser.add_argument("--junit", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args)
        result["peak_rss_mib"] = peak_mib()
        print(json.dumps(result))
        return 0
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus")  # fmt: skip
    ok = True
    parts = args.parts.split(",")
    if "10k" in parts:
        result = scenario(args.tests, args.runs)
        print("10k:", json.dumps(result))
        passed = result["added_by_history_s"] <= 2.0 and result["next_night"]["peak_rss_mib"] <= 256
        print(f"  goal <= 2 s added, <= 256 MiB: {'PASS' if passed else 'FAIL'}")
        ok &= passed
    if "1m" in parts:
        result = scenario(args.million, 1)
        print("1m:", json.dumps(result))
    if "wired10k" in parts:
        result = wired(args.tests, args.runs, baseline=False)
        print("wired10k:", json.dumps(result))
        passed = (
            result["added_by_history_s"] <= 2.0 and result["with_history"]["peak_rss_mib"] <= 256
        )
        print(f"  goal <= 2 s added, <= 256 MiB (through process_object): "
              f"{'PASS' if passed else 'FAIL'}")  # fmt: skip
        ok &= passed
    if "wired1m" in parts:
        result = wired(args.million, 1, baseline="junitparser" in parts)
        print("wired1m:", json.dumps(result))
    if "parse" in parts:
        from report_processor_bench import BASELINE_SCRIPT, generate_phpunit_report

        with tempfile.TemporaryDirectory(prefix="history-bench-") as scratch:
            path = Path(scratch) / "junit.xml"
            generate_phpunit_report(path, args.million)
            print("parse:", json.dumps(run_child("parse", args.million, 0, str(path))))
            if "parsehist" in parts:
                # Two nights of the same report: the second is timed (rows, digest, diff).
                hist = run_child("parsehist", args.million, 2, str(path))
                print("parse+history:", json.dumps(hist))
            if "junitparser" in parts:
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(path)], check=True,
                               capture_output=True)  # fmt: skip
                elapsed = time.perf_counter() - started
                print(f"junitparser: {elapsed:.2f} s (fromfile + walking every case)")
                if "parsehist" in parts:
                    ratio = hist["total_s"] / elapsed
                    print(f"  parse+history / junitparser: {ratio:.2f}x (goal <= 0.3x), "
                          f"peak {hist['peak_rss_mib']} MiB (goal <= 128 MiB)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
