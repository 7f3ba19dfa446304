"""The synthesized stack for config/example.json against a reviewed copy: a refactor of modules/
that claims "synth byte-identical" is checked here, and an intended change is reviewed as a diff
(`make golden` rewrites tests/infra/golden/cdk.tf.json; review it with `git diff`).

Normalised, never skipped: the report processor's asset hash (it changes with any edit of
report_processor/) and absolute paths of this machine are replaced by placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.golden import assert_matches_golden

GOLDEN = Path(__file__).resolve().parent / "golden" / "cdk.tf.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
_ASSET_PATH = re.compile(r"(assets/[^/]+/)[0-9A-F]{32}(/)")
_ASSET_HASH = re.compile(r"[0-9A-F]{32}")
SOME_HASH = "6B5C702112FB6197FEB25C0F986F8362"


def normalise(value: Any, key: str = "", roots: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        return {name: normalise(item, name, roots) for name, item in value.items()}
    if isinstance(value, list):
        return [normalise(item, key, roots) for item in value]
    if not isinstance(value, str):
        return value
    if key == "source_code_hash" and _ASSET_HASH.fullmatch(value):
        return "<asset-hash>"
    value = _ASSET_PATH.sub(r"\1<asset-hash>\2", value)
    for root, placeholder in zip(roots, ("<outdir>", "<repo>"), strict=True):
        value = value.replace(root, placeholder)
    return value


def normalised_text(text: str, outdir: Path) -> str:
    roots = (str(outdir), str(REPO_ROOT))
    return json.dumps(normalise(json.loads(text), roots=roots), indent=2, sort_keys=True) + "\n"


def test_normalising_strips_only_what_varies():
    synthesized = {
        "resource": {
            "aws_lambda_function": {
                "f": {
                    "filename": f"assets/bundle_1/{SOME_HASH}/archive.zip",
                    "source_code_hash": SOME_HASH,
                    "description": f"{REPO_ROOT}/x and /tmp/out/y",
                    "image_uri": f"123.dkr.ecr.us-east-1.amazonaws.com/r:{SOME_HASH}",
                }
            }
        }
    }
    got = json.loads(normalised_text(json.dumps(synthesized), Path("/tmp/out")))
    function = got["resource"]["aws_lambda_function"]["f"]
    assert function["filename"] == "assets/bundle_1/<asset-hash>/archive.zip"
    assert function["source_code_hash"] == "<asset-hash>"
    assert function["description"] == "<repo>/x and <outdir>/y"
    assert function["image_uri"].endswith(f":{SOME_HASH}")  # not an asset


def test_synth_matches_golden(synthesized):
    outdir = synthesized.stack_dir.parent.parent
    assert_matches_golden(GOLDEN, normalised_text(synthesized.text, outdir))
