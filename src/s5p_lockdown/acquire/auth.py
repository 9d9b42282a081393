"""CDSE credentials and OpenID Connect access tokens.

Credentials come from, in this order: a netrc-style file given explicitly, the environment
variables ``CDSE_USERNAME`` and ``CDSE_PASSWORD``, or ``~/.netrc`` (entry
``machine identity.dataspace.copernicus.eu login ... password ...``). They are never read from
the workflow configuration and never logged. Accounts with two-factor authentication also need
the current code of their authenticator app (TOTP, six digits, valid ~30 s): from
``CDSE_TOTP`` for the first login, or typed at a prompt when the command runs in a terminal
(asked only after CDSE refused a login without a code).

Tokens come from the password grant (``client_id=cdse-public``). An access token lives a few
minutes (``expires_in`` seconds): it is renewed with the refresh token shortly before it expires
(at 90 % of its life, at most 60 s early), or when a download answers 401, and the password is
sent again only when the refresh token is refused or expired. Refused credentials are
remembered and never re-sent, so many download threads cannot lock the account.
"""

from __future__ import annotations

import logging
import netrc
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests

from s5p_lockdown.acquire.errors import AcquireError, AuthenticationError, CredentialsError
from s5p_lockdown.acquire.http import CdseSession, RetryPolicy, send

log = logging.getLogger(__name__)

ENV_USERNAME = "CDSE_USERNAME"
ENV_PASSWORD = "CDSE_PASSWORD"
ENV_TOTP = "CDSE_TOTP"
NETRC_MACHINE = "identity.dataspace.copernicus.eu"
CLIENT_ID = "cdse-public"


@dataclass(frozen=True)
class Credentials:
    """A CDSE account; ``source`` says where it was read (for messages); ``totp`` the current
    two-factor code, if any (sent with the first login only: codes expire). Secrets are kept
    out of ``repr``."""

    username: str
    password: str = field(repr=False)
    source: str = ""
    totp: str | None = field(default=None, repr=False)


def _from_netrc(path: Path) -> Credentials | None:
    try:
        entry = netrc.netrc(path).authenticators(NETRC_MACHINE)
    except FileNotFoundError:
        return None
    except (netrc.NetrcParseError, OSError) as exc:
        reason = exc.msg if isinstance(exc, netrc.NetrcParseError) else exc.strerror or str(exc)
        raise CredentialsError(f"cannot read credentials file {path}: {reason}") from None
    if entry is None or not entry[0] or not entry[2]:
        return None
    return Credentials(entry[0], entry[2], str(path))


def load_credentials(
    netrc_path: str | Path | None = None, environ: Mapping[str, str] = os.environ
) -> Credentials:
    """The CDSE account from ``netrc_path`` (if given), else the environment, else
    ``~/.netrc``, with the two-factor code of ``CDSE_TOTP`` if set; raises
    :class:`CredentialsError` saying where credentials were looked for."""
    found = _account(netrc_path, environ)
    code = (environ.get(ENV_TOTP) or "").strip()
    return replace(found, totp=code) if code else found


def _account(netrc_path: str | Path | None, environ: Mapping[str, str]) -> Credentials:
    machine = f"'machine {NETRC_MACHINE} login <user> password <password>'"
    if netrc_path is not None:
        path = Path(netrc_path).expanduser()
        if not path.is_file():
            raise CredentialsError(f"credentials file {path} does not exist")
        found = _from_netrc(path)
        if found is None:
            raise CredentialsError(f"{path} has no entry {machine}")
        return found
    username, password = environ.get(ENV_USERNAME), environ.get(ENV_PASSWORD)
    if username and password:
        return Credentials(username, password, "environment")
    if username or password:
        missing = ENV_PASSWORD if username else ENV_USERNAME
        raise CredentialsError(f"{missing} is not set (set both {ENV_USERNAME} and {ENV_PASSWORD})")
    default = Path("~/.netrc").expanduser()
    found = _from_netrc(default)
    if found is None:
        raise CredentialsError(
            f"no CDSE credentials: set {ENV_USERNAME} and {ENV_PASSWORD}, or add {machine} to "
            f"{default} (or pass a netrc-style file)"
        )
    return found


class TokenManager:
    """Access tokens for one account, shared by the download threads (thread-safe).

    ``ask_totp`` asks the user for a two-factor code (None when nobody can answer, e.g. in a
    workflow job); it is called only after CDSE refused a login without a code. ``clock`` gives
    seconds (monotonic); tests pass a fake one.
    """

    def __init__(
        self, credentials: Credentials, token_url: str, retry: RetryPolicy = RetryPolicy(),
        timeout: float = 60.0, session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        ask_totp: Callable[[], str] | None = None,
    ):
        self.credentials = credentials
        self.token_url = token_url
        self.retry = retry
        self.timeout = timeout
        self._session = session or CdseSession()
        self._ask_totp = ask_totp
        self._totp = credentials.totp
        self._clock = clock
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_until = 0.0
        self._refresh: str | None = None
        self._refresh_until = 0.0
        self._refused: AuthenticationError | None = None

    def token(self) -> str:
        """A valid access token (renewed if it is about to expire)."""
        with self._lock:
            if self._refused is not None:
                raise self._refused
            if self._access is not None and self._clock() < self._access_until:
                return self._access
            if self._refresh is not None and self._clock() < self._refresh_until:
                answer = self._request(
                    {"grant_type": "refresh_token", "refresh_token": self._refresh}
                )
                if answer is not None:
                    return self._store(answer)
                log.info("CDSE refused the refresh token; logging in again")
            return self._store(self._login())

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after the server refused it (401): the next :meth:`token` renews
        it, once, however many threads saw the refusal."""
        with self._lock:
            if token == self._access:
                self._access = None

    def _store(self, answer: dict) -> str:
        now = self._clock()
        try:
            access, lifetime = answer["access_token"], float(answer["expires_in"])
            refresh_lifetime = float(answer.get("refresh_expires_in", lifetime))
        except (KeyError, TypeError, ValueError):
            raise AcquireError(
                f"token request to {self.token_url}: answer lacks access_token/expires_in"
            ) from None
        self._access = access
        self._access_until = now + lifetime - min(60.0, lifetime / 10)
        self._refresh = answer.get("refresh_token")
        self._refresh_until = now + refresh_lifetime - min(60.0, refresh_lifetime / 10)
        return access

    def _login(self) -> dict:
        """The password grant, with the two-factor code if there is one (each code is sent
        once); when refused without a code and someone can answer, asks for one and tries
        again once. Raises :class:`AuthenticationError` when refused."""
        form = {"grant_type": "password", "username": self.credentials.username,
                "password": self.credentials.password}
        code, self._totp = self._totp, None
        answer = self._request(form | ({"totp": code} if code else {}))
        if isinstance(answer, dict):
            return answer
        if not code and self._ask_totp is not None:
            code = self._ask_totp().strip()
            if code:
                answer = self._request(form | {"totp": code})
                if isinstance(answer, dict):
                    return answer
        self._refused = AuthenticationError(self._refusal(answer, two_factor_sent=bool(code)))
        raise self._refused

    def _refusal(self, detail: str, two_factor_sent: bool) -> str:
        who = f"user {self.credentials.username!r} (from {self.credentials.source})"
        if two_factor_sent:
            advice = ("Check the username and password, and that the two-factor code is the "
                      f"current one (codes expire after ~30 s: set a fresh {ENV_TOTP})")
        else:
            advice = ("Check the username and password; if the account uses two-factor "
                      f"authentication, set {ENV_TOTP} to the current code of the authenticator "
                      "app (or run the command in a terminal to be asked for it)")
        return (f"CDSE refused the credentials of {who}: {detail}. {advice}; not retrying, so "
                "the account is not locked")

    def _request(self, form: dict) -> dict | str | None:
        """POST a grant. Returns the JSON answer; when the grant is refused, None for a
        refresh token and the server's reason (text) for a password grant."""
        response = send(
            self._session, "POST", self.token_url, self.retry, "CDSE token request",
            data={"client_id": CLIENT_ID, **form}, timeout=self.timeout,
        )
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise AcquireError(
                    f"token request to {self.token_url}: answer is not JSON"
                ) from None
        if response.status_code not in (400, 401):
            raise AcquireError(f"token request to {self.token_url}: HTTP {response.status_code}")
        if form["grant_type"] == "refresh_token":
            return None
        try:
            detail = response.json().get("error_description") or response.json().get("error")
        except (ValueError, AttributeError):
            detail = None
        return str(detail or f"HTTP {response.status_code}")
