"""Report processor: JUnit XML to a markdown + JSON summary (pure core) and CloudWatch metrics.

The package root imports only the pure core; the AWS shell lives in `handler` and `aws`.
"""

from report_processor.location import PathSettings
from report_processor.model import Report, RunMetadata, Totals
from report_processor.parse import JUnitError
from report_processor.render import DEFAULT_MAX_BYTES, MIN_MAX_BYTES, to_json, to_markdown
from report_processor.summary import Summary, build_report, summarize
from report_processor.tally import ParseLimits

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MIN_MAX_BYTES",
    "JUnitError",
    "ParseLimits",
    "PathSettings",
    "Report",
    "RunMetadata",
    "Summary",
    "Totals",
    "build_report",
    "summarize",
    "to_json",
    "to_markdown",
]
