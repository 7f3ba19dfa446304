#!/usr/bin/env python
"""Synthesize the Lambda Test Runner stack: `make synth`, `cdktf synth` and `cdktf deploy` run this.

The configuration comes from LTR_CONFIG (a path), LTR_ENV (an environment name, meaning
config/<env>.json), the cdktf context keys `ltrConfig`/`ltrEnv`, or config/example.json.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main() -> int:
    from modules.config import ConfigError, load_config, resolve_config_source

    # The config is checked before the AWS provider bindings load (~20 s) so mistakes show fast.
    try:
        from cdktf import App
    except ImportError as error:
        print(f"error: {error}; run `make install` to create .venv first", file=sys.stderr)
        return 2
    app = App()
    context = {key: app.node.try_get_context(key) for key in ("ltrConfig", "ltrEnv")}
    try:
        config = load_config(resolve_config_source(os.environ, context))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from modules.stack import synthesize

    output = synthesize(app, config)
    print(
        f"synthesized {config.names.stack} for {config.project}/{config.environment} "
        f"from {config.source} -> {os.path.relpath(output)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
