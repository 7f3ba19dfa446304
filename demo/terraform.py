"""Offline Terraform for the synthesized stack: find the provider mirror, init, validate, and
apply/destroy against an AWS emulator (moto) through a test-only override file.

Used by the demo (`make demo`) and tests/infra. The stack directory cdktf writes is copied into
a working directory first, so the repository never holds `.terraform/` or emulator state, and
the JSON users deploy never carries emulator settings: those live only in
`zz_emulator_override.tf.json` (Terraform merges `*_override.tf.json` files last).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIRROR_ENV = "LTR_TF_PLUGIN_MIRROR"
TERRAFORM_ENV = "LTR_TERRAFORM"
OVERRIDE_FILE = "zz_emulator_override.tf.json"
PROVIDER_PATH = Path("registry.terraform.io") / "hashicorp" / "aws"
# Where provider mirrors usually live; the first that holds hashicorp/aws wins.
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)
# Provider `endpoints` keys for every service the stack uses.
EMULATED_SERVICES = (
    "cloudwatch",
    "ec2",
    "ecr",
    "ecs",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "s3",
    "secretsmanager",
    "sfn",
    "sns",
    "sqs",
    "sts",
)


# Literal network ids in the synthesized JSON come from the config (references are ${...}).
_NETWORK_ID_RE = re.compile(r"(?<![\w-])(vpc|subnet|rtb|sg)-[0-9a-f]{8}(?:[0-9a-f]{9})?(?![\w-])")


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries its output."""


def find_terraform(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    explicit = environ.get(TERRAFORM_ENV)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("terraform")


def terraform_missing_reason(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    explicit = environ.get(TERRAFORM_ENV)
    where = (
        f"{TERRAFORM_ENV}={explicit} is not a file"
        if explicit
        else f"not on PATH and {TERRAFORM_ENV} is unset"
    )
    return f"terraform is not installed ({where}); install Terraform >= 1.5 to validate or apply"


def find_plugin_mirror(environ: Mapping[str, str] | None = None) -> Path | None:
    """The filesystem mirror holding hashicorp/aws: $LTR_TF_PLUGIN_MIRROR, else a usual place."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(MIRROR_ENV)
    candidates = [Path(explicit)] if explicit else list(MIRROR_CANDIDATES)
    for candidate in candidates:
        if (candidate / PROVIDER_PATH).is_dir():
            return candidate
    return None


def write_cli_config(path: Path, mirror: Path) -> Path:
    """A CLI config that installs hashicorp providers from the mirror only (no network)."""
    mirror_text = json.dumps(str(mirror))
    path.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path = {mirror_text}\n  }}\n"
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n'
        "}\n",
        encoding="utf-8",
    )
    return path


def emulator_override(
    endpoint_url: str, service_endpoints: Mapping[str, str] | None = None
) -> dict:
    """Provider settings that point every service at the emulator (or, per service, at
    `service_endpoints`), and a local backend."""
    endpoints = {service: endpoint_url for service in EMULATED_SERVICES}
    endpoints.update(service_endpoints or {})
    return {
        "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
        "provider": {
            "aws": [
                {
                    "access_key": "test",
                    "secret_key": "test",
                    "skip_credentials_validation": True,
                    "skip_metadata_api_check": "true",
                    "skip_requesting_account_id": True,
                    "s3_use_path_style": True,
                    "endpoints": [endpoints],
                }
            ]
        },
    }


@dataclass
class TerraformWorkspace:
    """A private copy of a synthesized stack directory, driven by the terraform CLI."""

    directory: Path
    terraform: str
    mirror: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    emulated_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        stack_dir: Path,
        work_dir: Path,
        *,
        terraform: str | None = None,
        mirror: Path | None = None,
    ) -> TerraformWorkspace:
        """Copy `stack_dir` (cdk.tf.json and assets/) to `work_dir`, which must not exist."""
        terraform = terraform or find_terraform()
        if terraform is None:
            raise TerraformError(terraform_missing_reason())
        mirror = mirror or find_plugin_mirror()
        if mirror is None:
            raise TerraformError(
                f"no offline provider mirror with hashicorp/aws found; set {MIRROR_ENV} to the "
                "folder that holds registry.terraform.io/"
            )
        shutil.copytree(
            stack_dir, work_dir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*")
        )
        cli_config = write_cli_config(work_dir / ".terraformrc", mirror)
        env = {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        return cls(directory=work_dir, terraform=terraform, mirror=mirror, extra_env=env)

    def run(self, *args: str, timeout: float = 600) -> str:
        env = {**os.environ, **self.extra_env}
        completed = subprocess.run(
            [self.terraform, *args],
            cwd=self.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise TerraformError(
                f"terraform {' '.join(args)} failed (exit {completed.returncode}):\n"
                f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        return completed.stdout

    @property
    def stack_file(self) -> Path:
        return self.directory / "cdk.tf.json"

    def use_emulator(
        self,
        endpoint_url: str,
        *,
        access_key: str = "test",
        service_endpoints: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Point the provider at an emulator; only this working copy is changed.

        The stack deploys into an existing VPC, and an emulator cannot create resources with
        chosen ids, so the VPC, subnets, route tables and security groups the config names are
        created in the emulator and the copy's literal ids are mapped to theirs. Returns that
        mapping {config id: emulator id}.
        """
        self.emulated_ids = self._emulate_network(endpoint_url, access_key)
        override = emulator_override(endpoint_url, service_endpoints)
        override["provider"]["aws"][0]["access_key"] = access_key
        (self.directory / OVERRIDE_FILE).write_text(json.dumps(override, indent=2) + "\n")
        # The emulator accepts any credentials; keep the machine's real ones out of reach.
        self.extra_env.update(
            {
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_PROFILE": "",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        return self.emulated_ids

    def _emulate_network(self, endpoint_url: str, access_key: str) -> dict[str, str]:
        import boto3  # only the emulator path needs it

        text = self.stack_file.read_text(encoding="utf-8")
        region = json.loads(text)["provider"]["aws"][0]["region"]
        ids = sorted({match.group(0) for match in _NETWORK_ID_RE.finditer(text)})
        by_kind: dict[str, list[str]] = {}
        for network_id in ids:
            by_kind.setdefault(network_id.split("-", 1)[0], []).append(network_id)
        ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
        )
        mapping: dict[str, str] = {}
        vpcs = by_kind.get("vpc") or ["vpc-emulated"]
        for index, vpc in enumerate(vpcs):
            mapping[vpc] = ec2.create_vpc(CidrBlock=f"10.{40 + index}.0.0/16")["Vpc"]["VpcId"]
        vpc_id = mapping[vpcs[0]]
        # Interface endpoints with private DNS need both attributes, as in a real VPC.
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        subnets = []
        for index, subnet in enumerate(by_kind.get("subnet", [])):
            created = ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=f"10.40.{index}.0/24",
                AvailabilityZone=zones[index % len(zones)],
            )
            mapping[subnet] = created["Subnet"]["SubnetId"]
            subnets.append(mapping[subnet])
        for index, route_table in enumerate(by_kind.get("rtb", [])):
            created = ec2.create_route_table(VpcId=vpc_id)
            mapping[route_table] = created["RouteTable"]["RouteTableId"]
            if index < len(subnets):
                ec2.associate_route_table(
                    RouteTableId=mapping[route_table], SubnetId=subnets[index]
                )
        for group in by_kind.get("sg", []):
            created = ec2.create_security_group(
                GroupName=f"emulated-{group}", Description=f"stands in for {group}", VpcId=vpc_id
            )
            mapping[group] = created["GroupId"]
        mapping.pop("vpc-emulated", None)
        if mapping:
            pattern = re.compile("|".join(re.escape(key) for key in mapping))
            text = pattern.sub(lambda match: mapping[match.group(0)], text)
            self.stack_file.write_text(text, encoding="utf-8")
        return mapping

    def init(self) -> str:
        return self.run("init", "-input=false", "-no-color", "-reconfigure")

    def validate(self) -> dict:
        return json.loads(self.run("validate", "-json", "-no-color"))

    def apply(self, parallelism: int = 10) -> str:
        return self.run(
            "apply", "-auto-approve", "-input=false", "-no-color", f"-parallelism={parallelism}"
        )

    def destroy(self, parallelism: int = 10) -> str:
        return self.run(
            "destroy", "-auto-approve", "-input=false", "-no-color", f"-parallelism={parallelism}"
        )

    def outputs(self) -> dict[str, object]:
        raw = json.loads(self.run("output", "-json", "-no-color"))
        return {name: entry["value"] for name, entry in raw.items()}

    def state_resources(self) -> list[str]:
        text = self.run("state", "list", "-no-color")
        return [line for line in text.splitlines() if line.strip()]
