"""Errors of the acquisition from the Copernicus Data Space Ecosystem.

Messages say what failed and what to do; they never contain a password or a token.
"""

from __future__ import annotations

from s5p_lockdown.errors import BadInputError, S5PLockdownError


class AcquireError(S5PLockdownError):
    """Searching or downloading from CDSE failed."""


class CredentialsError(AcquireError, BadInputError):
    """No CDSE credentials were found, or the credentials file cannot be read."""


class AuthenticationError(AcquireError, BadInputError):
    """CDSE refused the credentials or a token (never retried: that would lock the account)."""


class DownloadError(AcquireError):
    """One product could not be downloaded, verified or placed; ``name`` is the product."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class TransferError(DownloadError):
    """The network kept failing; the partial download is kept to be resumed."""


class ArchiveWriteError(DownloadError):
    """The archive cannot be written (disk full, permissions, path under a file, ...)."""
