"""Benchmark: per-test history (report_processor/history) at 10,000 and 1,000,000 tests.

    .venv/bin/python bench/history_bench.py [--tests 10000] [--runs 30] [--million N]

Each part runs in its own subprocess (peak RSS from getrusage of that child alone):

- history-10k: writes `--runs` nights of `--tests` tests (1 % failing, a few flaky, one test
  renamed per night) into a directory-backed store, then times the next night: open + one
  `on_case` per test + finish (write rows/digest/index, diff, per-test history, flakiness).
  "Without history" is the same loop calling a no-op instead of `on_case`; the difference is what
  history adds to a report. Goal: <= 2 s more, <= 256 MiB peak RSS.
- parse-1m: the current streaming parser (`parse_junit`) on a 1M-testcase PHPUnit-shaped file, for
  scale (the report's own cost).
- history-1m: two nights of `--million` tests (the second with 1 % changed outcomes, 100 renamed
  tests): time and peak RSS of the second night's history work, and the gzip rows size.

The stores are on local disk, so S3 transfer time is not included (say so with the figures).
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
from typing import IO

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


def part_history(tests: int, runs: int) -> dict:
    config = HistoryConfig()
    with tempfile.TemporaryDirectory(prefix="history-bench-") as scratch:
        store = DirStore(Path(scratch))
        started = time.perf_counter()
        for number in range(1, runs + 1):
            night(store, tests, number, seed=1, config=config)
        build = time.perf_counter() - started
        measured = night(store, tests, runs + 1, seed=1, config=config)
        rows_sizes = [
            (store.root / key).stat().st_size
            for key in store.list_keys(SCOPE.prefix)
            if key.endswith("rows.tsv.gz")
        ]
        digest_sizes = [
            (store.root / key).stat().st_size
            for key in store.list_keys(SCOPE.prefix)
            if key.endswith("digest.bin")
        ]
    baseline = loop_only(tests, runs + 1, seed=1)
    return {
        "tests": tests,
        "history_runs": runs,
        "build_history_s": round(build, 2),
        "next_night": measured,
        "loop_without_history_s": round(baseline, 3),
        "added_by_history_s": round(measured["total_s"] - baseline, 3),
        "rows_gz_bytes_per_run": max(rows_sizes),
        "digest_bytes_per_run": max(digest_sizes),
    }


def part_parse(cases_count: int) -> dict:
    from report_processor_bench import generate_phpunit_report

    from report_processor.parse import parse_junit

    with tempfile.TemporaryDirectory(prefix="history-bench-") as scratch:
        path = Path(scratch) / "junit.xml"
        generate_phpunit_report(path, cases_count)
        started = time.perf_counter()
        with path.open("rb") as stream:
            acc = parse_junit(stream)
        return {
            "cases": acc.tests,
            "parse_s": round(time.perf_counter() - started, 2),
            "xml_mib": round(path.stat().st_size / (1 << 20)),
        }


def child(part: str, args: argparse.Namespace) -> dict:
    if part == "history-10k":
        return part_history(args.tests, args.runs)
    if part == "history-1m":
        return part_history(args.million, 1)
    return part_parse(args.million)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--parts", default="history-10k,history-1m,parse-1m")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args)
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return 0
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpus"
    )
    for part in args.parts.split(","):
        command = [
            sys.executable,
            __file__,
            "--child",
            part,
            "--tests",
            str(args.tests),
            "--runs",
            str(args.runs),
            "--million",
            str(args.million),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode:
            print(completed.stderr[-3000:])
            return 1
        print(part, completed.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
