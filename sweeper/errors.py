"""The exceptions sweeper raises on purpose.

Every error meant for a user derives from :class:`SweeperError`; the CLI prints such errors on one
line without a traceback. Anything else reaching the CLI is a bug in sweeper.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "NotFoundError",
    "SpecError",
    "StorageError",
    "SweepError",
    "SweeperError",
    "TrialError",
    "UsageError",
]


class SweeperError(Exception):
    """Root of every error sweeper raises for a user to read.

    Its text is ``<message> (<file>: <field>); <hint>``, each part when given.

    Attributes:
        exit_code: The process exit status the CLI uses for this error.
    """

    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        text = self.message
        where = ": ".join(part for part in (self.file, self.field) if part)
        if where:
            text += f" ({where})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class SpecError(SweeperError, ValueError):
    """An experiment spec (or a manifest) is invalid; nothing was started."""

    exit_code = 2


class ConfigError(SpecError):
    """``sweeper.toml`` or a ``SWEEPER_*`` environment variable is invalid."""


class UsageError(SweeperError, ValueError):
    """A command was given an argument it cannot use (an export format it does not write)."""

    exit_code = 2


class NotFoundError(SweeperError, LookupError):
    """The sweep or trial a command names does not exist."""


class SweepError(SweeperError):
    """A sweep could not run to its end (Ray, MLflow or too many failed trials)."""


class TrialError(SweeperError):
    """A single trial failed; the sweep records it and goes on."""


class StorageError(SweeperError):
    """An object store could not be used: unreachable, denied, or an object is missing.

    Its message never holds credentials (they are redacted before it is built).
    """
