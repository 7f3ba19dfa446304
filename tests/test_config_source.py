"""One rule picks the config file for `main.py` (synth, deploy) and for `ltr`:
modules.config.resolve_config_source."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ltr.cli import main as ltr_main
from modules.config import (
    CONFIG_DIR,
    DEFAULT_CONFIG_PATH,
    ConfigError,
    resolve_config_source,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("environ", "context", "flags", "expected"),
    [
        ({}, {}, {}, DEFAULT_CONFIG_PATH),
        ({"LTR_ENV": "dev"}, {"ltrEnv": "prod"}, {}, CONFIG_DIR / "dev.json"),
        ({"LTR_CONFIG": "/x.json", "LTR_ENV": "dev"}, {}, {}, Path("/x.json")),
        ({}, {"ltrEnv": "prod"}, {}, CONFIG_DIR / "prod.json"),
        ({}, {"ltrConfig": "a.json", "ltrEnv": "prod"}, {}, Path("a.json")),
        ({"LTR_CONFIG": "/x.json"}, {}, {"env": "dev"}, CONFIG_DIR / "dev.json"),
        ({"LTR_ENV": "dev"}, {}, {"config": "b.json", "env": "qa"}, Path("b.json")),
        # Empty values count as unset, as in a shell's `LTR_ENV= make synth`.
        ({"LTR_CONFIG": "", "LTR_ENV": ""}, {"ltrEnv": None}, {"env": ""}, DEFAULT_CONFIG_PATH),
    ],
)
def test_precedence_flags_then_environment_then_context(environ, context, flags, expected):
    assert resolve_config_source(environ, context, **flags) == expected


def test_an_environment_name_never_depends_on_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dev.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_config_source({"LTR_ENV": "dev"}) == CONFIG_DIR / "dev.json"
    assert CONFIG_DIR.is_absolute()


@pytest.mark.parametrize(
    ("environ", "context", "flags", "origin"),
    [
        ({}, {}, {"env": "../../etc/passwd"}, "--env '../../etc/passwd'"),
        ({"LTR_ENV": "dev_eu"}, {}, {}, "LTR_ENV 'dev_eu'"),
        ({"LTR_ENV": "Prod"}, {}, {}, "LTR_ENV 'Prod'"),
        ({}, {"ltrEnv": "a/b"}, {}, "cdktf context ltrEnv 'a/b'"),
    ],
)
def test_a_bad_environment_name_is_one_error_naming_where_it_came_from(
    environ, context, flags, origin
):
    with pytest.raises(ConfigError) as caught:
        resolve_config_source(environ, context, **flags)
    assert caught.value.source == origin
    assert caught.value.problems == [
        "not an environment name: use lower-case letters, digits and '-' (it names "
        "config/<env>.json); give a file with --config or LTR_CONFIG instead"
    ]


def test_ltr_and_synth_give_the_same_error_for_the_same_setting():
    env = {**os.environ, "LTR_ENV": "dev_eu", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("LTR_CONFIG", None)
    synth = subprocess.run(
        [sys.executable, "main.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    err = io.StringIO()
    old = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        code = ltr_main(["runs"], io.StringIO(), err)
    finally:
        os.environ.clear()
        os.environ.update(old)
    problem = "LTR_ENV 'dev_eu'"
    assert synth.returncode == 2 and problem in synth.stderr, synth.stderr
    assert code == 2 and problem in err.getvalue(), err.getvalue()
    assert "not an environment name" in synth.stderr and "not an environment name" in err.getvalue()
