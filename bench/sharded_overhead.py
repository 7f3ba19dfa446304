"""Benchmark: the fan-out overhead of a sharded run (plan + merge + orchestration) on the fixture,
and the merge step alone at scale.

    PYTHONPATH=$PWD:$PWD/runner_image .venv/bin/python bench/sharded_overhead.py \
        [--shards 3,4] [--runs 3] [--merge-cases 1000000] [--merge-shards 8]

fixture: the emulator executes the deployed definition (demo/sharded_sandbox.py) with the real
runner handler for the plan (PHPUnit's own listing of the suite, the packing, plan.json) and for
every shard, on the fixture app with PHP and PostgreSQL, and the real merge function; see
docs/sharding.md for what is played (the Lambda service itself). The Lambda stand-in runs one
handler at a time, so the shards run one after another here; on AWS they run side by side
and the run takes plan + slowest shard + merge + orchestration. The overhead beyond the
slowest shard is therefore measured as:

    execution wall time - the sum of every handler's time   (the emulator's orchestration)
    + the plan handler's time + the merge handler's time

Goal (issue 13): under 5 s. The plan's time includes PHPUnit listing the suite (a PHP process
booting the app), as on AWS.

merge: one child process merges `--merge-shards` shards of a `--merge-cases` PHPUnit-shaped
report (report_processor_bench's generator, split by class) from local files, timing the pure
merge (report_processor/merge.py) and its peak RSS: memory must stay flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 5.0


def fixture(shard_counts: list[int], runs: int) -> list[dict]:
    from demo.services import PostgresServer
    from demo.sharded_sandbox import sharded_sandbox
    from demo.step_functions import run_execution
    from modules.config import DEFAULT_CONFIG_PATH, load_config
    from modules.shard_flow import execution_input

    config = load_config(DEFAULT_CONFIG_PATH)
    rows = []
    with (
        PostgresServer.start() as postgres,
        sharded_sandbox(config, postgres, "ltr_bench_shards") as sandbox,
    ):
        for shards in shard_counts:
            for number in range(runs):
                sandbox.play()
                before = len(sandbox.stand_in.invocations)
                name = f"bench-{shards}-{number}-{int(time.time())}"
                execution = run_execution(
                    sandbox.emulator, sandbox.state_machine_arn, name,
                    execution_input("test", [], shards),
                )  # fmt: skip
                if execution.status != "SUCCEEDED":
                    raise RuntimeError(f"{name}: {execution.status} {execution.failures()}")
                calls = sandbox.stand_in.invocations[before:]
                kinds: dict[str, list[float]] = {"plan": [], "shard": [], "merge": []}
                for call in calls:
                    payload = call.payload if isinstance(call.payload, dict) else {}
                    kind = payload.get("action") or ("shard" if "shard" in payload else "?")
                    kinds.setdefault(str(kind), []).append(call.seconds)
                orchestration = execution.seconds - sum(call.seconds for call in calls)
                overhead = orchestration + sum(kinds["plan"]) + sum(kinds["merge"])
                rows.append(
                    {
                        "shards": shards,
                        "wall": execution.seconds,
                        "plan": sum(kinds["plan"]),
                        "slowest_shard": max(kinds["shard"]),
                        "shards_total": sum(kinds["shard"]),
                        "merge": sum(kinds["merge"]),
                        "orchestration": orchestration,
                        "overhead": overhead,
                    }
                )
                print(json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
    return rows


def prepare_merge(cases: int, shards: int) -> Path:
    """Shard reports in a temporary directory: each a whole PHPUnit report of its share, as a
    shard writes it (report_processor_bench's generator), plus manifests and the plan."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from report_processor_bench import generate_phpunit_report

    work = Path(tempfile.mkdtemp(prefix="ltr-merge-bench-"))
    for index in range(shards):
        generate_phpunit_report(work / f"junit-{index:03d}.xml", cases // shards, seed=index + 2)
        (work / f"manifest-{index:03d}.json").write_text(
            json.dumps({"status": "passed", "duration_seconds": 1.0})
        )
    (work / "plan.json").write_text(
        json.dumps(
            {
                "run_id": "bench",
                "command": "test",
                "shards": [
                    {"index": i, "classes": [{"name": "x", "tests": cases // shards}]}
                    for i in range(shards)
                ],
            }
        )
    )
    return work


def merge_child(work: Path) -> None:
    """In a fresh process (its peak RSS is the merge's): merge the shard files of `work`."""
    from report_processor.merge import merge_run, parse_merge_event

    run = "runs/2026-11-29/bench/test/"

    def local(key: str) -> Path | None:
        if key == run + "plan.json":
            return work / "plan.json"
        parts = key.removeprefix(run + "shards/").split("/")
        if len(parts) != 2:
            return None
        stem, suffix = parts[1].split(".")
        path = work / f"{stem}-{parts[0]}.{suffix}"
        return path if path.exists() else None

    class Files:
        def read_json(self, key, max_bytes):
            path = local(key)
            return json.loads(path.read_text()) if path else None

        def open_object(self, key, version_id, max_bytes):
            path = local(key)
            return path.open("rb") if path else None

        def put_text(self, key, text, content_type):
            pass

        def put_file(self, key, body, content_type):
            body.seek(0, 2)
            self.size = body.tell()

    files = Files()
    event = {"action": "merge", "bucket": "bench", "plan_key": run + "plan.json", "shards": []}
    started = time.perf_counter()
    with tempfile.TemporaryFile(dir=work) as spool:
        result = merge_run(parse_merge_event(event), files, spool=lambda: spool)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    inputs = sum(path.stat().st_size for path in work.glob("junit-*.xml"))
    print(
        json.dumps(
            {
                "cases": sum(row.tests for row in result.shards),
                "shards": len(result.shards),
                "input_mib": round(inputs / 2**20, 1),
                "merged_mib": round(files.size / 2**20, 1),
                "seconds": round(seconds, 2),
                "peak_rss_mib": round(rss / 1024, 1),
                "status": result.status,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="3,4")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--merge-cases", type=int, default=1_000_000)
    parser.add_argument("--merge-shards", type=int, default=8)
    parser.add_argument("--merge-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.merge_child:
        merge_child(args.merge_child)
        return 0
    failed = False
    if args.runs:
        rows = fixture([int(n) for n in args.shards.split(",")], args.runs)
        for shards in sorted({row["shards"] for row in rows}):
            mine = [row for row in rows if row["shards"] == shards]
            median = {k: statistics.median(r[k] for r in mine) for k in mine[0] if k != "shards"}
            verdict = "met" if median["overhead"] < GOAL_SECONDS else "MISSED"
            failed |= verdict != "met"
            print(
                f"{shards} shards, median of {len(mine)}: overhead {median['overhead']:.2f}s "
                f"(plan {median['plan']:.2f}s, merge {median['merge']:.2f}s, "
                f"orchestration {median['orchestration']:.2f}s); slowest shard "
                f"{median['slowest_shard']:.2f}s; goal < {GOAL_SECONDS:g}s: {verdict}"
            )
    if args.merge_cases:
        work = prepare_merge(args.merge_cases, args.merge_shards)
        try:
            child = subprocess.run(
                [sys.executable, __file__, "--merge-child", str(work)],
                capture_output=True, text=True, env={**os.environ}, check=False,
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(child.stdout.strip() or child.stderr[-2000:])
        failed |= child.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
