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

from modules.packaging import PackagingError, stage_report_processor

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_FILES = ("main.py", "cdktf.json", "modules", "config", "report_processor")


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
    assert not any(name.startswith("boto3/") for name in names), "boto3 comes with the runtime"
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
