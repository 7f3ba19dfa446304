"""`make image` and `make push`: no Docker engine runs here, so the targets are checked as
`make -n` prints them (the exact commands a real run executes), their refusals are run for
real, and the docs' commands are compared with the Makefile's."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.image.conftest import REPO_ROOT, dockerfile_text

# The document that tells users how to build and push.
DEPLOY_DOC = REPO_ROOT / "docs" / "deploying.md"
EXAMPLE_REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ltr-dev-runner"
COMMAND_PREFIXES = ("docker ", "aws ecr ")


def make(*args: str, dry_run: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *(["-n"] if dry_run else []), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and whitespace collapsed."""
    return [" ".join(line.split()) for line in re.sub(r"\\\n", " ", text).splitlines()]


def commands(output: str) -> list[str]:
    return [line for line in logical_lines(output) if line.startswith(COMMAND_PREFIXES)]


def git_describe() -> str:
    return subprocess.run(
        ["git", "describe", "--tags", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_make_image_builds_what_lambda_and_fargate_accept():
    result = make("image", "APP=tests/laravel_app", "TAG=v9.9.9")

    assert result.returncode == 0, result.stderr
    (build,) = commands(result.stdout)
    assert shlex.split(build) == [
        "docker",
        "buildx",
        "build",
        "--platform",
        "linux/amd64",
        "--provenance=false",
        "--build-context",
        "runner=runner_image/runner",
        "-f",
        "runner_image/Dockerfile",
        "--build-arg",
        f"IMAGE_VERSION={git_describe()}",
        "-t",
        "ltr-runner:v9.9.9",
        "--load",
        "tests/laravel_app",
    ]


def test_the_tag_defaults_to_the_git_version():
    (build,) = commands(make("image", "APP=tests/laravel_app").stdout)
    assert f"-t ltr-runner:{git_describe()} " in build


def test_make_image_without_an_app_says_what_to_pass():
    missing = make("image", dry_run=False)
    assert missing.returncode == 2
    assert "set APP=path/to/laravel-app" in missing.stderr

    not_an_app = make("image", "APP=tests", dry_run=False)
    assert not_an_app.returncode == 2
    assert "tests/composer.json not found: APP must be the Laravel app's root" in (
        not_an_app.stderr
    )


def test_make_push_logs_in_tags_and_pushes_to_the_repository():
    result = make("push", f"REPO={EXAMPLE_REPO}", "TAG=v9.9.9")

    assert result.returncode == 0, result.stderr
    registry = EXAMPLE_REPO.split("/")[0]
    assert commands(result.stdout) == [
        "aws ecr get-login-password --region eu-west-1 | docker login --username AWS "
        f"--password-stdin {registry}",
        f"docker tag ltr-runner:v9.9.9 {EXAMPLE_REPO}:v9.9.9",
        f"docker push {EXAMPLE_REPO}:v9.9.9",
    ]


def test_the_region_comes_from_the_registry_host_in_every_partition():
    china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/ltr-dev-runner"
    (login, *_) = commands(make("push", f"REPO={china}", "TAG=v1").stdout)
    assert login.startswith("aws ecr get-login-password --region cn-north-1 |")


def test_make_push_without_a_repository_says_how_to_get_one(tmp_path):
    missing = make("push", f"STACK_DIR={tmp_path}")
    assert missing.returncode == 2
    assert "pass REPO=<account>.dkr.ecr.<region>.amazonaws.com/<name>" in missing.stderr
    assert "terraform output repository_url" in missing.stderr

    not_ecr = make("push", "REPO=ghcr.io/acme/runner")
    assert not_ecr.returncode == 2
    assert "is not an ECR repository URL" in not_ecr.stderr


def test_make_push_reads_the_repository_url_from_the_terraform_state(tmp_path):
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (see docs/testing.md)")
    # The stack's output, in a state of its own (built-in provider only: works offline).
    (tmp_path / "main.tf").write_text(
        f'resource "terraform_data" "repository" {{ input = "{EXAMPLE_REPO}" }}\n'
        'output "repository_url" { value = terraform_data.repository.output }\n'
    )
    env_free = {"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "PATH": "/usr/bin"}
    env = {**env_free, "PATH": str(Path(terraform).parent) + ":/usr/bin:/bin"}
    for step in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        subprocess.run(
            [terraform, f"-chdir={tmp_path}", *step], env=env, capture_output=True, check=True
        )

    result = make("push", f"STACK_DIR={tmp_path}", "TAG=v9.9.9")

    assert result.returncode == 0, result.stderr
    assert commands(result.stdout)[-1] == f"docker push {EXAMPLE_REPO}:v9.9.9"


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, re.M | re.S)


def test_the_documented_commands_are_the_makefiles():
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    documented = [line for block in code_blocks(doc) for line in commands(block)]
    expected = commands(
        make(
            "image", "APP=path/to/laravel-app", "TAG=v1.0.0", "IMAGE_VERSION=<git describe>"
        ).stdout
    ) + commands(make("push", f"REPO={EXAMPLE_REPO}", "TAG=v1.0.0").stdout)

    assert documented == expected


def test_every_make_command_in_the_docs_runs():
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    invocations = [
        line.split("#", 1)[0].split()
        for block in code_blocks(doc)
        for line in logical_lines(block)
        if re.match(r"^(\w+=\S+ )*make ", line)
    ]
    assert {words[words.index("make") + 1] for words in invocations} >= {"image", "push"}
    for words in invocations:
        args = words[words.index("make") + 1 :]
        if args[0] == "synth":
            continue  # synthesizes the whole stack: covered by tests/infra
        result = make(*args, f"REPO={EXAMPLE_REPO}")
        assert result.returncode == 0, f"{' '.join(words)}: {result.stderr}"


def test_the_dockerfile_states_the_makefiles_build_command():
    header = "\n".join(
        line[1:] for line in dockerfile_text().splitlines() if line.startswith("#   ")
    )
    (documented,) = [line for line in commands(header) if line.startswith("docker buildx build")]
    (actual,) = commands(
        make("image", "APP=path/to/laravel-app", "TAG=<tag>", "IMAGE_VERSION=<git describe>").stdout
    )
    assert documented == actual
