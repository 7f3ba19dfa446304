"""runner/requirements.txt: exactly the lock's pins for what the runner imports, with hashes."""

from __future__ import annotations

import json

import pytest

from tests.golden import assert_matches_golden
from tests.image.conftest import dockerfile_pip_install
from tests.image.lock import (
    IMAGE_MARKERS,
    LOCKFILE,
    REQUIREMENTS,
    closure,
    distributions_of,
    expected_requirements,
    parse_requirements,
    third_party_imports,
)


def test_requirements_golden_is_rendered_from_the_lock():
    # `make golden` rewrites the file after a lock change; review it as a diff.
    assert_matches_golden(REQUIREMENTS, expected_requirements())


def test_every_pin_is_the_locks_version_and_hashes():
    lock = json.loads(LOCKFILE.read_text())["default"]
    pins = parse_requirements(REQUIREMENTS.read_text())
    assert pins, "no pins parsed"
    for name, pin in pins.items():
        assert pin.version == lock[name]["version"].removeprefix("=="), name
        assert pin.hashes and set(pin.hashes) == set(lock[name]["hashes"]), name


def test_the_pins_cover_what_the_runner_imports_and_nothing_else():
    imported = third_party_imports()
    # A new third-party import needs its pin in the image: add it to the Pipfile's [packages],
    # `make install`, `make golden`, and update this set and docs/runner.md ("The image").
    assert imported == {"boto3", "botocore"}, f"runner/ now imports {sorted(imported)}"
    pins = set(parse_requirements(REQUIREMENTS.read_text()))
    assert pins == closure(distributions_of(imported))
    assert {"urllib3", "python-dateutil", "jmespath", "s3transfer", "six"} <= pins


def test_the_image_installs_them_hash_checked_without_resolving():
    flags = dockerfile_pip_install()
    assert "--require-hashes" in flags and "--no-deps" in flags and "--no-cache-dir" in flags
    assert "--only-binary=:all:" in flags  # no sdist build steps inside the image


def test_extras_are_not_followed():
    # boto3 and botocore offer a `crt` extra (awscrt) the runner does not ask for.
    assert "awscrt" not in closure({"boto3"})
    with pytest.raises(LookupError, match="awscrt is needed"):
        closure({"boto3"}, {**IMAGE_MARKERS, "extra": "crt"})


def test_a_pin_without_hashes_is_not_parsed_as_hash_checked():
    pins = parse_requirements("boto3==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\nsix==1.17.0\n")
    assert pins["boto3"].hashes == ("sha256:" + "a" * 64,)
    assert pins["six"].hashes == ()
    with pytest.raises(ValueError, match="not an exact pin"):
        parse_requirements("boto3>=1.0\n")
