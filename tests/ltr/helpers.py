"""What the ltr tests share: running the CLI in-process, its one-line error shape, and a config
of another environment (so its resources, the bucket included, are its own)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ltr.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO_ROOT / "config" / "example.json"


def run_ltr(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ltr: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def other_env_config(tmp_path: Path, environment: str) -> Path:
    """config/example.json with another environment name: every derived name changes with it."""
    raw = json.loads(EXAMPLE_CONFIG.read_text())
    raw["environment"] = environment
    path = tmp_path / f"{environment}.json"
    path.write_text(json.dumps(raw))
    return path
