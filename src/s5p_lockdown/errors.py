"""Exceptions raised for bad input.

Every exception about a file names the file, so a user looking at a log of thousands of orbits
knows which one to fix or delete.
"""

from __future__ import annotations

from pathlib import Path


class S5PLockdownError(Exception):
    """Base class of the project's own errors."""


class BadInputError(S5PLockdownError):
    """Bad input that fails the same way on every attempt: a corrupt or wrong product, an
    invalid configuration or boundary file, missing or refused credentials.

    A job of the HTCondor pool that fails with one exits with
    :data:`s5p_lockdown.retry.BAD_INPUT_EXIT_CODE`, which the condor profile tells HTCondor not
    to retry; any other failure (an I/O error, a download cut off, a killed job) is retried
    (profiles/README.md, "What happens when things go wrong")."""


class InvalidProductError(BadInputError):
    """A file is not a usable Sentinel-5P L2 NO2 product.

    Attributes
    ----------
    path : pathlib.Path
        The offending file.
    reason : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(BadInputError):
    """A configuration value is missing or invalid; the message names the key."""
