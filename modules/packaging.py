"""Stage the report processor's deployment package: its source plus pinned pure-Python dependencies.

The zip is built by cdktf (TerraformAsset, ARCHIVE) from the staging directory prepared here.
Dependencies are copied from the current environment's installed distributions (the exact
files pip recorded), after checking each one's version against Pipfile.lock, so the package
matches the lockfile.

boto3 and botocore are bundled too, not taken from the Lambda runtime: the processor's
conditional writes (`PutObject(IfNoneMatch="*")`) need a botocore from late 2024, and the
runtime's copy is whatever AWS last updated it to. Lambda puts the package (/var/task) ahead of
the runtime's own (/var/runtime) on sys.path, so the bundled copy is the one imported.
Measured with the pinned versions: ~23 MB unzipped, ~14 MB zipped (limits: 250 MB / 50 MB).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from modules.config import REPO_ROOT

REPORT_PROCESSOR_SOURCE = REPO_ROOT / "report_processor"
LOCKFILE = REPO_ROOT / "Pipfile.lock"
# Powertools and the AWS SDK, with everything they need at runtime.
REPORT_PROCESSOR_DISTRIBUTIONS = (
    "aws-lambda-powertools",
    "typing-extensions",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
# Lambda's limits for a zip uploaded directly: 50 MB zipped, 250 MB unzipped (with layers).
ZIPPED_LIMIT_BYTES = 50 * 1024 * 1024
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class BundleSize:
    zipped: int
    unzipped: int


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {"__pycache__", ".pytest_cache"} or n.endswith(".pyc")}


def stage_report_processor(
    destination: Path,
    source: Path = REPORT_PROCESSOR_SOURCE,
    distributions: tuple[str, ...] = REPORT_PROCESSOR_DISTRIBUTIONS,
    lockfile: Path = LOCKFILE,
) -> Path:
    """Fill `destination` (created, must not exist) with the package's files; return it."""
    if not source.is_dir():
        raise PackagingError(
            f"{source}: the report processor source is missing; run from a checkout of the repo"
        )
    pins = locked_versions(lockfile)
    destination.mkdir(parents=True, exist_ok=False)
    shutil.copytree(source, destination / source.name, ignore=_ignore)
    for name in distributions:
        _copy_distribution(name, destination, pins)
    unzipped = unzipped_size(destination)
    if unzipped > UNZIPPED_LIMIT_BYTES:
        raise PackagingError(
            f"the report processor package is {unzipped / 2**20:.0f} MiB unzipped; Lambda allows "
            f"{UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB: drop a dependency"
        )
    return destination


def locked_versions(lockfile: Path = LOCKFILE) -> dict[str, str]:
    """{distribution name: version} of Pipfile.lock's runtime ("default") packages."""
    try:
        default = json.loads(lockfile.read_text(encoding="utf-8"))["default"]
    except (OSError, ValueError, KeyError) as error:
        raise PackagingError(f"{lockfile}: cannot read the locked versions ({error})") from None
    return {
        _normalize(name): entry["version"].removeprefix("==")
        for name, entry in default.items()
        if isinstance(entry, dict) and str(entry.get("version", "")).startswith("==")
    }


def unzipped_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def measure_bundle(directory: Path, zip_path: Path) -> BundleSize:
    """Zip `directory` as a deployment package (deflate) and return both sizes."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return BundleSize(zipped=zip_path.stat().st_size, unzipped=unzipped_size(directory))


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _copy_distribution(name: str, destination: Path, pins: dict[str, str]) -> None:
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise PackagingError(
            f"{name} is not installed in this environment; run `make install` first"
        ) from None
    locked = pins.get(_normalize(name))
    if locked is None:
        raise PackagingError(
            f"{name} is not pinned in Pipfile.lock's runtime packages; add it to [packages] "
            "so the deployed package is reproducible"
        )
    if distribution.version != locked:
        raise PackagingError(
            f"{name} {distribution.version} is installed but Pipfile.lock pins {locked}; "
            "run `make install` so the package matches the lockfile"
        )
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
