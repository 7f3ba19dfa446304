"""Which artisan commands may run, and which arguments each accepts.

Arguments are checked against a per-command table rather than a deny-list: anything not
listed is refused, so a new PHPUnit or Scribe option cannot slip through unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAX_ARGS = 32
MAX_ARG_CHARS = 512

# Shell syntax has no meaning here (argv, never a shell), but it has no use in any
# accepted value either, and refusing it keeps logs and reports unambiguous.
_SHELL_SYNTAX = re.compile(r"[;&`<>'\"!]|\$\(|\$\{")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArgumentError(ValueError):
    """An argument the command does not accept; the message names it and says what would do."""


@dataclass(frozen=True)
class ValueRule:
    """What an option's value may look like, and how to describe that in an error."""

    pattern: re.Pattern[str]
    description: str

    def check(self, option: str, value: str) -> None:
        if value == "":
            raise ArgumentError(f"{option} needs a value ({self.description})")
        if value.startswith("-"):
            raise ArgumentError(
                f"the value of {option} may not start with '-' (got {value!r}): "
                "it would be read as another option"
            )
        if not self.pattern.fullmatch(value):
            raise ArgumentError(f"invalid value {value!r} for {option}: {self.description}")


NAME_LIST = ValueRule(
    re.compile(r"[A-Za-z0-9_.:\- ]{1,100}(,[A-Za-z0-9_.:\- ]{1,100}){0,19}"),
    "names of letters, digits, '_', '.', ':', '-' or spaces, separated by commas",
)
TEST_FILTER = ValueRule(
    re.compile(r"[A-Za-z0-9_\\:.*+?^$()\[\]{}|#@=,/ \-]{1,200}"),
    "a PHPUnit filter pattern (letters, digits and regex characters, at most 200)",
)
TITLE = ValueRule(
    re.compile(r"[\w .,:()\-]{1,120}"),
    "a title of words, spaces and . , : ( ) - (at most 120 characters)",
)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    value_options: Mapping[str, ValueRule] = field(default_factory=dict)
    flag_options: frozenset[str] = frozenset()
    # Options the runner sets itself; the caller may not override them.
    reserved_options: frozenset[str] = frozenset()

    def accepted(self) -> str:
        options = sorted([*self.value_options, *self.flag_options])
        return ", ".join(options) if options else "no arguments"


KNOWN_COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            "test",
            value_options={
                "--filter": TEST_FILTER,
                "--testsuite": NAME_LIST,
                "--group": NAME_LIST,
                "--exclude-group": NAME_LIST,
            },
            flag_options=frozenset(
                {"--stop-on-failure", "--stop-on-error", "--stop-on-defect", "--testdox"}
            ),
            reserved_options=frozenset({"--log-junit", "--configuration", "-c"}),
        ),
        CommandSpec("scribe:generate", flag_options=frozenset({"--force", "--no-extraction"})),
        CommandSpec("api:export-markdown", value_options={"--title": TITLE}),
    )
}

DEFAULT_COMMANDS = ("test", "scribe:generate", "api:export-markdown")


def spec_for(command: str) -> CommandSpec:
    """A configured command without a table entry runs, but takes no arguments."""
    return KNOWN_COMMANDS.get(command, CommandSpec(command))


def validate_args(spec: CommandSpec, args: Sequence[str]) -> tuple[str, ...]:
    """Return the arguments in a normal form (`--opt value`), or raise ArgumentError."""
    if len(args) > MAX_ARGS:
        raise ArgumentError(f"too many arguments ({len(args)}); at most {MAX_ARGS}")
    normal: list[str] = []
    index = 0
    while index < len(args):
        raw = args[index]
        _check_text(raw)
        option, has_inline, inline_value = raw.partition("=")
        if not option.startswith("-"):
            raise ArgumentError(
                f"unexpected argument {raw!r} for {spec.name}: only options are accepted "
                f"({spec.accepted()})"
            )
        if option in spec.reserved_options:
            raise ArgumentError(
                f"{option} is set by the runner and cannot be given for {spec.name}"
            )
        if option in spec.flag_options:
            if has_inline:
                raise ArgumentError(f"{option} takes no value (got {raw!r})")
            normal.append(option)
            index += 1
            continue
        rule = spec.value_options.get(option)
        if rule is None:
            raise ArgumentError(
                f"option {option!r} is not accepted for {spec.name}; accepted: {spec.accepted()}"
            )
        if has_inline:
            value = inline_value
            index += 1
        else:
            if index + 1 >= len(args):
                raise ArgumentError(f"{option} needs a value ({rule.description})")
            value = args[index + 1]
            _check_text(value)
            index += 2
        rule.check(option, value)
        normal.extend([option, value])
    return tuple(normal)


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise ArgumentError(f"arguments must be strings, got {type(text).__name__}")
    if len(text) > MAX_ARG_CHARS:
        raise ArgumentError(f"argument of {len(text)} characters; at most {MAX_ARG_CHARS}")
    if _CONTROL.search(text):
        raise ArgumentError(f"argument {text!r} contains a control character (NUL, newline...)")
    if _SHELL_SYNTAX.search(text):
        raise ArgumentError(
            f"argument {text!r} contains shell syntax (; & ` < > quotes ! $( ${{): "
            "arguments are passed to artisan as they are and need none"
        )
