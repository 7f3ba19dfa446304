"""`make synth` runs `python main.py`: it must work on a fresh checkout and fail fast and clearly
on a bad config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from modules.packaging import (
    UNZIPPED_LIMIT_BYTES,
    ZIPPED_LIMIT_BYTES,
    PackagingError,
    locked_versions,
    measure_bundle,
    stage_report_processor,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_FILES = (
    "main.py",
    "cdktf.json",
    "modules",
    "config",
    "report_processor",
    "runner_image",  # modules/ import the results-bucket layout from runner.layout
    "Pipfile.lock",  # the report processor package's versions are checked against it
)


def fresh_checkout(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in CHECKOUT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    return checkout


def run_main(checkout: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LTR_", "CDKTF_"))}
    return subprocess.run(
        [sys.executable, "main.py"],
        cwd=checkout,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_synthesizes_the_example_on_a_fresh_checkout(tmp_path):
    checkout = fresh_checkout(tmp_path)
    result = run_main(checkout)
    assert result.returncode == 0, result.stderr[-3000:]
    stack = checkout / "cdktf.out" / "stacks" / "lambda-test-runner" / "cdk.tf.json"
    assert stack.is_file()
    text = stack.read_text()
    assert str(tmp_path) not in text, "no absolute path may land in the JSON"
    assert '"function_name": "ltr-example-runner"' in text
    [archive] = (stack.parent / "assets").glob("*/*/archive.zip")
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    assert "aws_lambda_powertools/__init__.py" in names
    assert "jmespath/__init__.py" in names
    # The pinned SDK is bundled (the runtime's may predate IfNoneMatch), and the zip cdktf
    # built stays within Lambda's limit for a direct upload.
    assert {"boto3/__init__.py", "botocore/__init__.py", "s3transfer/__init__.py"} <= names
    assert archive.stat().st_size < ZIPPED_LIMIT_BYTES
    assert not any("__pycache__" in name for name in names)
    source_files = {
        f"report_processor/{p.relative_to(checkout / 'report_processor')}"
        for p in (checkout / "report_processor").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert source_files <= names


def test_a_bad_config_fails_before_the_provider_loads(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"project": "ltr", "environment": "dev", "region": "us-east-1"}')
    started = time.perf_counter()
    result = run_main(REPO_ROOT, LTR_CONFIG=str(bad))
    elapsed = time.perf_counter() - started
    assert result.returncode == 2
    assert "vpc: is required" in result.stderr
    assert "database: is required" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 15, "config errors must show before the ~20 s provider import"


def test_ltr_env_picks_the_environment_file():
    result = run_main(REPO_ROOT, LTR_ENV="no-such-env")
    assert result.returncode == 2
    assert "config/no-such-env.json: 1 problem(s)" in result.stderr
    assert "file not found" in result.stderr


def test_staging_copies_source_and_pure_python_dependencies(tmp_path):
    source = tmp_path / "report_processor"
    source.mkdir()
    (source / "handler.py").write_text("def handler(event, context):\n    return None\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    staged = stage_report_processor(tmp_path / "bundle", source=source)
    assert (staged / "report_processor" / "handler.py").is_file()
    assert not (staged / "report_processor" / "__pycache__").exists()
    assert (staged / "aws_lambda_powertools" / "metrics" / "__init__.py").is_file()
    assert (staged / "typing_extensions.py").is_file()


def test_staging_names_what_is_missing(tmp_path):
    with pytest.raises(PackagingError, match="report processor source is missing"):
        stage_report_processor(tmp_path / "a", source=tmp_path / "nowhere")
    source = tmp_path / "src"
    source.mkdir()
    with pytest.raises(PackagingError, match="no-such-dist is not installed"):
        stage_report_processor(tmp_path / "b", source=source, distributions=("no-such-dist",))


# --------------------------------------------------------------------------- bundled AWS SDK


@pytest.fixture(scope="module")
def staged_bundle(tmp_path_factory) -> Path:
    return stage_report_processor(tmp_path_factory.mktemp("bundle") / "package")


def test_bundle_carries_the_locked_boto3_and_botocore_and_they_win_on_sys_path(staged_bundle):
    pins = locked_versions()
    # Lambda puts the package (/var/task) ahead of the runtime's SDK (/var/runtime).
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import boto3, botocore\n"
        "from botocore.session import get_session\n"
        "model = get_session().get_service_model('s3')\n"
        "members = model.operation_model('PutObject').input_shape.members\n"
        "print(boto3.__file__, botocore.__file__, boto3.__version__, botocore.__version__,"
        " 'IfNoneMatch' in members)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(staged_bundle)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    boto3_file, botocore_file, boto3_version, botocore_version, conditional = result.stdout.split()
    assert boto3_file.startswith(str(staged_bundle)) and botocore_file.startswith(
        str(staged_bundle)
    )
    assert (boto3_version, botocore_version) == (pins["boto3"], pins["botocore"])
    # The processor's conditional write (PutObject IfNoneMatch="*") needs this botocore.
    assert conditional == "True"


def test_bundle_stays_within_lambdas_zip_limits(staged_bundle, tmp_path):
    size = measure_bundle(staged_bundle, tmp_path / "package.zip")
    with zipfile.ZipFile(tmp_path / "package.zip") as archive:
        names = archive.namelist()
    assert "botocore/data/s3/2006-03-01/service-2.json.gz" in names
    assert "report_processor/handler.py" in names
    assert size.zipped < ZIPPED_LIMIT_BYTES and size.unzipped < UNZIPPED_LIMIT_BYTES
    # Measured: ~15 MB zipped, ~23 MB unzipped; a jump means an unexpected dependency.
    assert size.zipped < 25 * 2**20, size


def test_staging_refuses_versions_other_than_the_lockfiles(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    lock = tmp_path / "Pipfile.lock"
    lock.write_text('{"default": {"six": {"version": "==0.0.1"}}}')
    with pytest.raises(PackagingError, match=r"six .* is installed but Pipfile.lock pins 0.0.1"):
        stage_report_processor(tmp_path / "a", source=source, distributions=("six",), lockfile=lock)
    lock.write_text('{"default": {}}')
    with pytest.raises(PackagingError, match="six is not pinned in Pipfile.lock"):
        stage_report_processor(tmp_path / "b", source=source, distributions=("six",), lockfile=lock)
