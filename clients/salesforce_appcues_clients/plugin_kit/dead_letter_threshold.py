"""When a run dead-letters too much, it fails instead of reporting success.

A setting that is valid but wrong (`user_id_field: Email`) dead-letters every record; the
run must not exit 0 and move the bookmark past them. A few dead letters are normal (a user
not in Salesforce yet), so the run fails only past both a fraction of its records and a
minimum count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..settings import FRACTION_TYPE, schema_defaults

EXIT_TOO_MANY_DEAD_LETTERS = 65  # EX_DATAERR (sysexits.h): the input could not be delivered


def threshold_properties() -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the two threshold settings (shared by both targets)."""
    return {
        "dead_letter_max_fraction": {
            "type": list(FRACTION_TYPE),  # numeric text too (meltano.yml declares it a string)
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "title": "Dead-letter threshold (fraction)",
            "description": (
                "The run fails (exit 65, no STATE for the batch that crossed it) when more than "
                "this fraction of its records were dead-lettered and more than "
                "`dead_letter_min_count` were. 1 never fails on dead letters."
            ),
        },
        "dead_letter_min_count": {
            "type": "integer",
            "minimum": 0,
            "default": 20,
            "title": "Dead-letter threshold (minimum count)",
            "description": (
                "Dead letters a run may always have, whatever their fraction: a quiet run with "
                "a few unmatched users stays green. Past this count, "
                "`dead_letter_max_fraction` decides."
            ),
        },
    }


class TooManyDeadLettersError(RuntimeError):
    """The run dead-lettered past the threshold; its last batch is not confirmed."""

    exit_code = EXIT_TOO_MANY_DEAD_LETTERS


@dataclass(frozen=True)
class DeadLetterThreshold:
    max_fraction: float
    min_count: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeadLetterThreshold:
        defaults = schema_defaults(threshold_properties())
        fraction = _setting(config, "dead_letter_max_fraction", defaults, float)
        count = _setting(config, "dead_letter_min_count", defaults, int)
        if not 0 <= fraction <= 1:
            raise ConfigurationError(
                f"setting 'dead_letter_max_fraction' must be between 0 and 1; got {fraction:g}"
            )
        if count < 0:
            raise ConfigurationError(
                f"setting 'dead_letter_min_count' must be 0 or more; got {count}"
            )
        return cls(max_fraction=fraction, min_count=int(count))

    def exceeded(self, dead_lettered: int, records: int) -> bool:
        return (
            dead_lettered > self.min_count
            and records > 0
            and dead_lettered > self.max_fraction * records
        )

    def check(self, dead_lettered: int, records: int) -> None:
        """Raises when past the threshold, with the figures and the settings to change."""
        if self.exceeded(dead_lettered, records):
            raise TooManyDeadLettersError(
                f"{dead_lettered} of the {records} records read so far were dead-lettered, "
                f"more than dead_letter_max_fraction ({self.max_fraction:g}) allows "
                f"(dead_letter_min_count: {self.min_count}); the last batch is not confirmed "
                "and no STATE is emitted for it. A wrong setting (e.g. the id field) is the "
                "usual cause: see the dead-letter file for the reasons."
            )


def _setting(config: Mapping[str, Any], name: str, defaults: Mapping[str, Any], kind: type) -> Any:
    value = config.get(name)
    if value is None or value == "":
        return defaults[name]
    try:
        return kind(value)
    except (TypeError, ValueError):
        expected = "a number between 0 and 1" if kind is float else "a whole number"
        raise ConfigurationError(f"setting {name!r} must be {expected}; got {value!r}") from None
