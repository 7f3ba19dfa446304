"""Fixtures for the infrastructure tests: the stack is synthesized ONCE per session.

Importing the provider bindings takes ~20 s and a synth ~20 s, so every construct test reads
the same synthesized JSON (config/example.json, which turns every optional feature on).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesized:
    config: Any  # modules.config.StackConfig
    path: Path  # .../stacks/<stack>/cdk.tf.json
    text: str

    @property
    def stack_dir(self) -> Path:
        return self.path.parent

    @property
    def data(self) -> dict:
        return json.loads(self.text)

    def resources(self, resource_type: str) -> dict[str, dict]:
        return self.data["resource"].get(resource_type, {})

    def resource(self, resource_type: str, path_suffix: str) -> dict:
        """The one resource of a type whose construct path ends with `path_suffix`."""
        found = [
            body
            for body in self.resources(resource_type).values()
            if body["//"]["metadata"]["path"].endswith(path_suffix)
        ]
        assert len(found) == 1, f"{resource_type} ending {path_suffix}: {len(found)} found"
        return found[0]

    def policy_statements(self, document_path_suffix: str) -> list[dict]:
        for body in self.data["data"]["aws_iam_policy_document"].values():
            if body["//"]["metadata"]["path"].endswith(document_path_suffix):
                return body["statement"]
        raise AssertionError(f"no policy document ending {document_path_suffix}")


@pytest.fixture(scope="session")
def example_config():
    from modules.config import DEFAULT_CONFIG_PATH, load_config

    return load_config(DEFAULT_CONFIG_PATH)


def _synthesize(config, tmp_path_factory) -> Synthesized:
    from cdktf import App

    from modules.stack import synthesize

    outdir = tmp_path_factory.mktemp("cdktf-out")
    path = synthesize(App(outdir=str(outdir)), config)
    return Synthesized(config, path, path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def synthesized(example_config, tmp_path_factory) -> Synthesized:
    return _synthesize(example_config, tmp_path_factory)


VARIANT_ENDPOINTS = {"s3": "exists", "secretsmanager": "exists", "logs": "exists", "ecr": "none"}


@pytest.fixture(scope="session")
def variant_config():
    """The example with the other choices: no customer-managed key (the default), no key for
    the DB secret, reserved concurrency set (to the nightly rule's 3 simultaneous targets), no
    CI tag prefixes (only untagged images expire), the run alarms off and no notification
    e-mails, and endpoints the VPC already has ("exists")
    or reaches through a NAT gateway ("none")."""
    import copy

    from modules.config import DEFAULT_CONFIG_PATH, parse_config

    raw = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    variant = copy.deepcopy(raw)
    variant["encryption"] = {"customer_managed_key": False}
    variant["database"].pop("secret_kms_key_arn")
    variant["runner"]["reserved_concurrency"] = 3
    variant["vpc"]["endpoints"] = dict(VARIANT_ENDPOINTS)
    variant["vpc"].pop("private_route_table_ids")
    variant["retention"] = {"log_days": 365}
    # The run alarms: new failures off (the default), run-not-passed switched off; no
    # notification e-mails.
    variant["alarms"]["run_not_passed"] = False
    variant["alarms"].pop("new_failures")
    variant.pop("notifications")
    return parse_config(variant, "variant.json")


@pytest.fixture(scope="session")
def synthesized_variant(variant_config, tmp_path_factory) -> Synthesized:
    """Synthesized once, only for the tests of the choices config/example.json does not make."""
    return _synthesize(variant_config, tmp_path_factory)
