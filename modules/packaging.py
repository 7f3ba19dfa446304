"""Stage the report processor's deployment package: its source plus pure-Python dependencies.

The zip is built by cdktf (TerraformAsset, ARCHIVE) from the staging directory prepared here.
Dependencies are copied from the current environment's installed distributions (the exact
files pip recorded), so the package matches the lockfile; boto3 is left out because the
Lambda Python runtime provides it.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from modules.config import REPO_ROOT

REPORT_PROCESSOR_SOURCE = REPO_ROOT / "report_processor"
# Powertools and what it needs at runtime; boto3/botocore come with the Lambda runtime.
REPORT_PROCESSOR_DISTRIBUTIONS = ("aws-lambda-powertools", "jmespath", "typing-extensions")
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")


class PackagingError(RuntimeError):
    pass


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {"__pycache__", ".pytest_cache"} or n.endswith(".pyc")}


def stage_report_processor(
    destination: Path,
    source: Path = REPORT_PROCESSOR_SOURCE,
    distributions: tuple[str, ...] = REPORT_PROCESSOR_DISTRIBUTIONS,
) -> Path:
    """Fill `destination` (created, must not exist) with the package's files; return it."""
    if not source.is_dir():
        raise PackagingError(
            f"{source}: the report processor source is missing; run from a checkout of the repo"
        )
    destination.mkdir(parents=True, exist_ok=False)
    shutil.copytree(source, destination / source.name, ignore=_ignore)
    for name in distributions:
        _copy_distribution(name, destination)
    return destination


def _copy_distribution(name: str, destination: Path) -> None:
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise PackagingError(
            f"{name} is not installed in this environment; run `make install` first"
        ) from None
    for file in distribution.files or ():
        relative = Path(str(file))
        # Console scripts and other files pip placed outside site-packages are not needed.
        if relative.parts[0] == ".." or "__pycache__" in relative.parts:
            continue
        if relative.suffix in _COMPILED_SUFFIXES:
            raise PackagingError(
                f"{name} ships compiled code ({relative}); the report processor bundle only "
                "takes pure-Python packages built for any platform"
            )
        origin = Path(str(distribution.locate_file(file)))
        if not origin.is_file():
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
