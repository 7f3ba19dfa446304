"""The runner's own per-command argument rules, so `ltr run` refuses exactly what the runner
would refuse, before anything starts.

They live in runner_image/runner/commands.py (standard library only, no AWS), which is not an
installed package: it is loaded from the checkout ltr runs from. Without it (ltr installed
elsewhere) only ltr's basic checks apply and the runner stays the authority.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from ltr.core import ArgumentCheck

RUNNER_COMMANDS_FILE = Path(__file__).resolve().parent.parent / "runner_image/runner/commands.py"
_MODULE_NAME = "_ltr_runner_commands"


def runner_argument_check(path: Path = RUNNER_COMMANDS_FILE) -> ArgumentCheck | None:
    if not path.is_file():
        return None
    module = sys.modules.get(_MODULE_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module  # dataclasses look their module up here
        try:
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 (a broken checkout must not break ltr; the runner still checks)
            del sys.modules[_MODULE_NAME]
            return None

    def check(command: str, args: Sequence[str]) -> None:
        module.validate_args(module.spec_for(command), list(args))

    return check
