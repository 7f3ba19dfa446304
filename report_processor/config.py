"""The report processor's settings, from the environment the stack gives the function.

Pure: reads a mapping, so tests and the CLI build it without touching os.environ.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from report_processor.history.records import HistoryConfig, HistoryConfigError
from report_processor.location import DEFAULT_APP_ROOT, PathSettings, validate_template
from report_processor.render import DEFAULT_MAX_BYTES, MIN_MAX_BYTES
from report_processor.tally import DEFAULT_MAX_TOKEN_BYTES, ParseLimits

DEFAULT_NAMESPACE = "LambdaTestRunner"
DEFAULT_MAX_OBJECT_BYTES = 1 << 30
MIN_MAX_TOKEN_BYTES = 1 << 16
# The runner's default allowlist; the stack passes the deployed one in RUNNER_COMMANDS.
DEFAULT_COMMANDS = ("test", "scribe:generate", "api:export-markdown")
COMMANDS_ENV = "RUNNER_COMMANDS"
# The SNS topic of run notifications (modules/contract.py NOTIFICATION_TOPIC_ARN); empty: none.
TOPIC_ENV = "NOTIFICATION_TOPIC_ARN"
DEFAULT_REGION = "us-east-1"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ProcessorConfig:
    project: str
    environment: str
    namespace: str = DEFAULT_NAMESPACE
    max_markdown_bytes: int = DEFAULT_MAX_BYTES
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    # The only values the Command metric dimension takes (anything else is "other").
    commands: frozenset[str] = frozenset(DEFAULT_COMMANDS)
    # Paths relative to the app root; links from the source-URL template (location.py).
    paths: PathSettings = PathSettings()
    history: HistoryConfig = field(default_factory=HistoryConfig)
    notification_topic_arn: str | None = None
    # Where the bucket is: the summary link in notifications points at its S3 console page.
    region: str = DEFAULT_REGION

    def parse_limits(self) -> ParseLimits:
        """The parser's limits from this configuration (the report and the shard merge)."""
        return ParseLimits(
            max_input_bytes=self.max_object_bytes, max_token_bytes=self.max_token_bytes
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorConfig:
        env = os.environ if env is None else env
        return cls(
            project=env.get("PROJECT") or "unknown",
            environment=env.get("ENVIRONMENT") or "unknown",
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            max_markdown_bytes=_int_env(env, "REPORT_MAX_BYTES", DEFAULT_MAX_BYTES, MIN_MAX_BYTES),
            max_object_bytes=_int_env(env, "REPORT_MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1),
            max_token_bytes=_int_env(
                env, "REPORT_MAX_TOKEN_BYTES", DEFAULT_MAX_TOKEN_BYTES, MIN_MAX_TOKEN_BYTES
            ),
            commands=_commands(env.get(COMMANDS_ENV)),
            paths=_paths(env),
            history=_history(env),
            notification_topic_arn=(env.get(TOPIC_ENV) or "").strip() or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        )


def _history(env: Mapping[str, str]) -> HistoryConfig:
    try:
        return HistoryConfig.from_env(env)
    except HistoryConfigError as error:
        raise ConfigError(str(error)) from None


def _int_env(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number of bytes") from None
    if value < minimum:
        raise ConfigError(f"{name}={value}: must be at least {minimum}")
    return value


def _paths(env: Mapping[str, str]) -> PathSettings:
    template = env.get("REPORT_SOURCE_URL_TEMPLATE") or None
    if template:
        problem = validate_template(template)
        if problem:
            raise ConfigError(f"REPORT_SOURCE_URL_TEMPLATE={template[:200]!r}: {problem}")
    return PathSettings(
        app_root=env.get("REPORT_APP_ROOT") or DEFAULT_APP_ROOT, source_url_template=template
    )


def _commands(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset(DEFAULT_COMMANDS)
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(
            f"{COMMANDS_ENV}={raw[:200]!r}: expected a JSON list of command names, "
            'e.g. ["test", "scribe:generate"] (the runner\'s allowlist)'
        )
    return frozenset(value)
