"""The example budget of the model tests: small by default, longer with an env var."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def model_settings(default_examples: int, steps: int = 30) -> settings:
    """Settings for one state machine: ``RELAY247_MODEL_EXAMPLES`` overrides the count."""
    examples = int(os.environ.get("RELAY247_MODEL_EXAMPLES", str(default_examples)))
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
