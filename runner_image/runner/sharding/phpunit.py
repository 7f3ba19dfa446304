"""What the runner gives PHPUnit for a sharded run: the listing's extra PHP settings, and one
shard's configuration. Pure: files are written by the caller, into the run's folder (/tmp).

The app is never modified: a shard's configuration is the app's own phpunit.xml with its test
suites replaced by the shard's files, written as `phpunit.xml` into the run's mirror of the app
(runner/workspace.py), where both `php artisan test` (base_path('phpunit.xml')) and PHPUnit's
own default lookup find it. Relative paths in it (bootstrap, directories) keep their meaning,
as the mirror's root stands where the app's does.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 (the DOCTYPE check below comes first)
from collections.abc import Sequence
from pathlib import Path

from .plan import CLASS_NAME, PlanError

# The configuration files PHPUnit looks for, in its order of preference.
CONFIG_NAMES = ("phpunit.xml", "phpunit.xml.dist", "phpunit.dist.xml")
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

# Run in every PHP process of the listing (auto_prepend_file): when PHPUnit has loaded test
# classes, write each concrete TestCase class's file, so a shard's configuration can name the
# files PHPUnit itself took them from (its listing names classes only). One file per process.
LISTING_PREPEND = r"""<?php
register_shutdown_function(static function (): void {
    $dir = getenv('LTR_LISTING_CLASSES_DIR');
    if (!is_string($dir) || $dir === '' || !class_exists('PHPUnit\Framework\TestCase', false)) {
        return;
    }
    $files = [];
    foreach (get_declared_classes() as $class) {
        if (is_subclass_of($class, 'PHPUnit\Framework\TestCase')) {
            $reflection = new ReflectionClass($class);
            if (!$reflection->isAbstract() && $reflection->getFileName() !== false) {
                $files[$class] = $reflection->getFileName();
            }
        }
    }
    file_put_contents($dir . '/classes-' . getmypid() . '.json', json_encode($files));
});
"""
CLASSES_ENV = "LTR_LISTING_CLASSES_DIR"
MAX_CLASSES_BYTES = 64 * 1024 * 1024


def listing_ini(prepend_path: str) -> str:
    """The extra PHP setting of the listing run (after the runner's zz-runner.ini)."""
    if '"' in prepend_path or "\n" in prepend_path:
        raise PlanError(f"unusable folder for the listing script: {prepend_path!r}")
    return f'auto_prepend_file = "{prepend_path}"\n'


def parse_class_files(dumps: Sequence[bytes]) -> dict[str, str]:
    """Merge the prepend script's dumps: class name -> absolute file (untrusted; the caller
    keeps only files inside the app)."""
    files: dict[str, str] = {}
    for raw in dumps:
        if len(raw) > MAX_CLASSES_BYTES:
            raise PlanError("the listing's class files dump is too large")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PlanError("the listing's class files dump is not JSON") from None
        if isinstance(data, list) and not data:
            continue  # PHP encodes an empty array as []
        if not isinstance(data, dict):
            raise PlanError("the listing's class files dump is not a JSON object")
        for name, path in data.items():
            if isinstance(name, str) and CLASS_NAME.fullmatch(name) and isinstance(path, str):
                files[name] = path
    return files


def read_app_configuration(app_dir: Path) -> bytes:
    """The app's PHPUnit configuration: the first of CONFIG_NAMES it has."""
    for name in CONFIG_NAMES:
        if (app_dir / name).is_file():
            with (app_dir / name).open("rb") as source:
                return source.read(MAX_CONFIG_BYTES + 1)
    raise PlanError(f"the app has no PHPUnit configuration ({', '.join(CONFIG_NAMES)})")


def effective_groups(
    app_config: bytes, include: Sequence[str], exclude: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The groups PHPUnit 9 selects by (TestRunner::handleConfiguration): the configuration's
    `<groups><include>` unless --group is given, its `<exclude>` unless --exclude-group is,
    never excluding a group named by --group."""
    root = _parse(app_config)

    def configured(kind: str) -> list[str]:
        return [
            (group.text or "").strip()
            for group in root.findall(f"groups/{kind}/group")
            if (group.text or "").strip()
        ]

    chosen_include = list(include) or configured("include")
    chosen_exclude = list(exclude) or [g for g in configured("exclude") if g not in include]
    return chosen_include, chosen_exclude


def shard_configuration(app_config: bytes, files: Sequence[str], suite_name: str) -> bytes:
    """The app's PHPUnit configuration with one test suite, `suite_name`, of `files`.
    Everything else (bootstrap, <php> settings, groups, extensions) stays the
    app's, so a shard runs its tests as an unsharded run would."""
    root = _parse(app_config)
    for suites in root.findall("testsuites"):
        root.remove(suites)
    # A default suite names suites that no longer exist here.
    root.attrib.pop("defaultTestSuite", None)
    suites = ET.SubElement(root, "testsuites")
    suite = ET.SubElement(suites, "testsuite", {"name": suite_name})
    for relative in files:
        ET.SubElement(suite, "file").text = relative
    ET.indent(root)
    ET.register_namespace("xsi", _XSI)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def _parse(app_config: bytes) -> ET.Element:
    if len(app_config) > MAX_CONFIG_BYTES:
        raise PlanError(f"the app's PHPUnit configuration is over {MAX_CONFIG_BYTES} bytes")
    # The app is untrusted: no entity tricks in a file the runner parses.
    if b"<!DOCTYPE" in app_config.upper() or b"<!ENTITY" in app_config.upper():
        raise PlanError("the app's PHPUnit configuration has a DOCTYPE; remove it")
    try:
        root = ET.fromstring(app_config)  # noqa: S314 (no DOCTYPE, size bounded)
    except ET.ParseError as error:
        raise PlanError(f"the app's PHPUnit configuration is not well-formed ({error})") from None
    if root.tag != "phpunit":
        raise PlanError(f"the app's PHPUnit configuration has a <{root.tag}> root, not <phpunit>")
    return root
