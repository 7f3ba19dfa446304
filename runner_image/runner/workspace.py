"""A writable mirror of the read-only app for one run.

Lambda's file system is read-only except /tmp, yet Laravel writes its storage, its
bootstrap cache and compiled views under the app, and the docs commands write into it.
The mirror is a folder in the run's directory whose entries are symbolic links to the app,
except for the folders a run writes to, which are real (seeded with the app's contents
where they are output folders). Laravel's stock `bootstrap/app.php` takes its base path from
APP_BASE_PATH, so pointing that at the mirror redirects every write, including those of
the app instances PHPUnit creates, without changing the app.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

# Created empty for every run: stale caches from the image would point at the wrong paths.
FRESH_DIRS = (
    "storage/app/public",
    "storage/framework/cache/data",
    "storage/framework/sessions",
    "storage/framework/testing",
    "storage/framework/views",
    "storage/logs",
    "bootstrap/cache",
)
_FRESH_ROOTS = ("storage", "bootstrap/cache")

# Loaded by every PHP process of the run (PHPUnit runs in a child of artisan) through
# PHP_INI_SCAN_DIR, after the image's own settings:
# - variables_order makes PHP fill $_ENV, which Laravel's bootstrap/app.php reads
#   APP_BASE_PATH from; Debian's and Amazon Linux's php.ini leave it empty.
# - zend.exception_ignore_args keeps call arguments out of exception traces: PHP's default
#   (Off) prints a failed connection's password there, shortened past what masking can find.
PHP_INI = 'variables_order = "EGPCS"\nzend.exception_ignore_args = On\n'


def build_mirror(app_dir: Path, mirror: Path, output_dirs: Iterable[str]) -> None:
    """Mirror `app_dir` at `mirror`; `output_dirs` (relative) become real, seeded folders."""
    seeded = {d for d in output_dirs if d not in _FRESH_ROOTS}
    real = set(seeded) | set(_FRESH_ROOTS)
    _mirror_level(app_dir, mirror, "", real, seeded)
    for relative in FRESH_DIRS:
        (mirror / relative).mkdir(parents=True, exist_ok=True)
    for relative in seeded:
        (mirror / relative).mkdir(parents=True, exist_ok=True)


def _mirror_level(
    source: Path, target: Path, prefix: str, real: set[str], seeded: set[str]
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        relative = f"{prefix}{entry.name}"
        destination = target / entry.name
        if relative in real:
            if relative in seeded and entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, destination, symlinks=True)
            # otherwise created empty by build_mirror
        elif any(r.startswith(relative + "/") for r in real) and entry.is_dir(
            follow_symlinks=False
        ):
            _mirror_level(Path(entry.path), destination, relative + "/", real, seeded)
        else:
            destination.symlink_to(entry.path)


def write_php_ini(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zz-runner.ini").write_text(PHP_INI)
    return folder
