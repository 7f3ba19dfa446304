"""Facts of runner_image/Dockerfile that decide whether the image builds and starts on AWS.

No Docker engine runs here: what can be checked without one is checked against its sources
(Amazon Linux 2023's package lists, the lockfile) and, for the PHP settings, with real PHP.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from modules.contract import FARGATE_ENTRY_POINT
from tests.image.conftest import REPO_ROOT, dockerfile_text

RUNNER_CONTEXT = REPO_ROOT / "runner_image" / "runner"  # --build-context runner=...

# Every package name the image may install with dnf, checked against Amazon Linux 2023's own
# release notes: "Amazon Linux 2023 version 2023.5.20240624 release notes" (AWS documentation,
# relnotes-2023.5.20240624) lists the new php8.3 source package with these binary RPMs, each for
# aarch64 and x86_64; 2023.5.20240903 lists them again when 8.3.7 became 8.3.10. php8.1 had no
# -zip subpackage before AL2023.4, and php8.4 shipped without -zip and -sodium at first (AL2023
# issues #195, #622, #844): bump PHP_VERSION only after checking its list the same way.
# unzip: the distribution's own unzip-6.0-57.amzn2023 build.
VERIFIED_AL2023_PACKAGES = {
    "8.3": {
        "php8.3-cli",
        "php8.3-common",
        "php8.3-pgsql",
        "php8.3-pdo",
        "php8.3-mbstring",
        "php8.3-xml",
        "php8.3-intl",
        "php8.3-process",
        "php8.3-opcache",
        "php8.3-bcmath",
        "php8.3-zip",
        "php8.3-sodium",
        "php8.3-gd",
        "php8.3-soap",
        "unzip",
    },
}
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile_text(), re.M))


def run_instructions() -> list[str]:
    """Each RUN instruction with its continuation lines joined and comment lines dropped."""
    lines = [line for line in dockerfile_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]


def dnf_packages() -> set[str]:
    (install,) = [run for run in run_instructions() if run.startswith("dnf install")]
    words = install.split("&&")[0].split()[3:]
    php = args()["PHP_VERSION"]
    return {word.strip('"').replace("${PHP_VERSION}", php) for word in words}


def runner_ini() -> str:
    """The ini file the image writes into /etc/php.d, as PHP will read it."""
    (printf,) = re.findall(
        r"printf '([^']*)'\s+> /etc/php\.d/zz-runner\.ini", "\n".join(run_instructions())
    )
    return printf.replace("\\n", "\n")


def test_base_images_are_pinned_by_digest():
    text = dockerfile_text()
    pinned = args()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == [
        "composer:2.8@${COMPOSER_DIGEST}",
        "public.ecr.aws/lambda/python:3.12@${LAMBDA_PYTHON_DIGEST}",
    ]
    for name in ("COMPOSER_DIGEST", "LAMBDA_PYTHON_DIGEST"):
        assert DIGEST.match(pinned[name]), f"{name}={pinned[name]!r} is not a sha256 digest"
    # The procedure to bump them is written next to them.
    assert "docker buildx imagetools inspect public.ecr.aws/lambda/python:3.12" in text
    assert "docker buildx imagetools inspect composer:2.8" in text


def test_every_dnf_package_is_in_amazon_linux_2023_for_the_php_version():
    php = args()["PHP_VERSION"]
    assert php in VERIFIED_AL2023_PACKAGES, f"PHP {php}: verify its AL2023 package list first"
    packages = dnf_packages()
    assert {"php8.3-cli", "php8.3-pgsql", "php8.3-process", "unzip"} <= packages
    unverified = packages - VERIFIED_AL2023_PACKAGES[php]
    assert not unverified, f"not verified against AL2023's package list: {sorted(unverified)}"


def test_the_runners_pins_come_from_the_named_context_and_go_to_the_interpreter_fargate_runs():
    text = dockerfile_text()
    python = args()["RUNNER_PYTHON"]
    assert python == "/var/lang/bin/python3.12"
    for source in re.findall(r"^COPY --from=runner (\S+) ", text, re.M):
        assert (RUNNER_CONTEXT / source).exists(), f"{source} is not in the runner context"
    runs = run_instructions()
    assert any(run.startswith('"${RUNNER_PYTHON}" -m pip install') for run in runs)
    # The build fails unless the task's entry point starts: same interpreter, same directory.
    after_task_root = text.split("WORKDIR /var/task\n")[-1]
    assert 'RUN "${RUNNER_PYTHON}" -m runner --help' in after_task_root


def test_the_fargate_task_starts_the_images_interpreter():
    """The task definition's entry point (modules/contract.py) is the image's full interpreter."""
    assert list(FARGATE_ENTRY_POINT) == [args()["RUNNER_PYTHON"], "-m", "runner"]


def test_the_php_settings():
    settings = dict(
        (key.strip(), value.strip())
        for key, value in (line.split("=", 1) for line in runner_ini().splitlines() if line)
    )
    assert settings == {
        "variables_order": '"EGPCS"',
        "memory_limit": "1024M",
        "zend.exception_ignore_args": "On",
    }


LEAKY_CONNECT = r"""
function createPdoConnection($dsn, $username, $password) {
    return new PDO($dsn, $username, $password);
}
try {
    createPdoConnection('pgsql:host=127.0.0.1;port=1;dbname=app', 'app', $argv[1]);
} catch (PDOException $e) {
    echo $e->getTraceAsString();
}
"""


def php(code: str, *argv: str, tmp_path: Path, with_image_ini: bool) -> subprocess.CompletedProcess:
    """Real PHP with its built-in defaults (an empty php.ini: Debian's own php.ini already turns
    the setting on) plus the distribution's extension directory, and the image's ini if asked."""
    php_bin = shutil.which("php")
    if php_bin is None:
        pytest.skip("php is not installed (make system-deps installs it)")
    base, extra = tmp_path / "php-ini", tmp_path / "php.d"
    for directory in (base, extra):
        directory.mkdir(exist_ok=True)
    (base / "php.ini").write_text("")
    env = {"PATH": "/usr/bin:/bin"}
    if with_image_ini:
        (extra / "zz-runner.ini").write_text(runner_ini())
        # A leading empty entry keeps the distribution's own scan directory (pdo_pgsql).
        env["PHP_INI_SCAN_DIR"] = f":{extra}"
    return subprocess.run(
        [php_bin, "-c", str(base), "-r", code, "--", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_the_images_ini_a_pdo_error_trace_shows_no_password(tmp_path):
    password = "Sup3r-s3cret&<pw>"

    without = php(LEAKY_CONNECT, password, tmp_path=tmp_path, with_image_ini=False)
    hardened = php(LEAKY_CONNECT, password, tmp_path=tmp_path, with_image_ini=True)

    # PHP's default puts the call's arguments into the trace, strings cut at 15 characters
    # (PHP 8.2's SensitiveParameter hides it in PDO's own frame, not in the caller's, which is
    # where Laravel's connector passes it).
    assert f"createPdoConnection('pgsql:host=127....', 'app', '{password[:15]}...')" in (
        without.stdout
    ), without
    assert "createPdoConnection()" in hardened.stdout, hardened
    assert password[:4] not in hardened.stdout + hardened.stderr


def test_the_builds_own_ini_check_passes_only_with_the_ini(tmp_path):
    (check,) = re.findall(r"php -r '([^']+)'", "\n".join(run_instructions()))
    assert php(check, tmp_path=tmp_path, with_image_ini=True).returncode == 0
    assert php(check, tmp_path=tmp_path, with_image_ini=False).returncode == 1
