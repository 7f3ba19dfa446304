"""`python -m report_processor summarize [--format markdown|json] [--max-bytes N] FILE...`

Exit status: 0 when every input parsed (whatever the tests' results), 2 when any input was
unusable (the report still lists it) or the command line was wrong.
"""

from __future__ import annotations

import argparse
import sys

from report_processor.location import DEFAULT_APP_ROOT, PathSettings, validate_template
from report_processor.model import RunMetadata
from report_processor.render import DEFAULT_MAX_BYTES, MIN_MAX_BYTES
from report_processor.summary import summarize

EXIT_OK = 0
EXIT_UNUSABLE_INPUT = 2


def _max_bytes(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes, got {raw!r}") from None
    if value < MIN_MAX_BYTES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MAX_BYTES} bytes, got {value}")
    return value


def _template(raw: str) -> str:
    problem = validate_template(raw)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return raw


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m report_processor",
        description="Summarize JUnit/xUnit XML reports as markdown or JSON.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    summarize_cmd = commands.add_parser(
        "summarize",
        help="merge one or more JUnit XML files (shards) into one summary on stdout",
    )
    summarize_cmd.add_argument("files", nargs="+", metavar="FILE", help="JUnit XML file")
    summarize_cmd.add_argument("--format", choices=("markdown", "json"), default="markdown")
    summarize_cmd.add_argument(
        "--max-bytes",
        type=_max_bytes,
        default=DEFAULT_MAX_BYTES,
        help=f"byte cap of the markdown (default {DEFAULT_MAX_BYTES}, minimum {MIN_MAX_BYTES})",
    )
    summarize_cmd.add_argument(
        "--app-root",
        default=DEFAULT_APP_ROOT,
        help=f"show paths below this folder relative to it (default {DEFAULT_APP_ROOT})",
    )
    summarize_cmd.add_argument(
        "--source-url-template",
        type=_template,
        help="link failing lines: https://…/blob/{app_version}/{path}#L{line}",
    )
    summarize_cmd.add_argument("--app-version", help="the {app_version} of the links")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = PathSettings(app_root=args.app_root, source_url_template=args.source_url_template)
    metadata = RunMetadata(app_version=args.app_version) if args.app_version else None
    summary = summarize(args.files, metadata, max_bytes=args.max_bytes, paths=paths)
    text = summary.markdown if args.format == "markdown" else summary.json
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
    for item in summary.report.unusable_inputs:
        print(f"report_processor: unusable input {item.path}: {item.error}", file=sys.stderr)
    return EXIT_UNUSABLE_INPUT if summary.report.unusable_inputs else EXIT_OK
