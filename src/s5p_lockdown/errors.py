"""Exceptions raised for bad input.

Every exception about a file names the file, so a user looking at a log of thousands of orbits
knows which one to fix or delete.
"""

from __future__ import annotations

from pathlib import Path


class S5PLockdownError(Exception):
    """Base class of the project's own errors."""


class InvalidProductError(S5PLockdownError):
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


class ConfigError(S5PLockdownError):
    """A configuration value is missing or invalid; the message names the key."""
