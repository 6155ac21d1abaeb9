"""HTTP basic auth for the team server, and the rule that only loopback may go without it.

Users and password hashes come from a file (`PRUNESCOPE_AUTH_FILE`, lines `user:hash`) or the
environment (`PRUNESCOPE_USERS="user:hash,user:hash"`); hashes are werkzeug's
(`python -m app.auth USER` prints a line for the file). Passwords are never stored.

    python -m app.auth alice >> users.txt
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import ipaddress
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

import dash
import dash_auth
from werkzeug.security import check_password_hash, generate_password_hash

from pipeline.store import PruneScopeError

AUTH_FILE_ENV = "PRUNESCOPE_AUTH_FILE"
USERS_ENV = "PRUNESCOPE_USERS"
NO_AUTH_ENV = "PRUNESCOPE_NO_AUTH"
HOW_TO = (
    f"create users with `python -m app.auth USER >> users.txt` and set {AUTH_FILE_ENV}=users.txt "
    f"(or {USERS_ENV}='user:hash,...'); behind your own authenticating proxy, pass --no-auth "
    f"({NO_AUTH_ENV}=1 for gunicorn)"
)


def parse_users(text: str, separator: str = "\n") -> dict[str, str]:
    """`user:hash` entries (blank entries and `#` comments skipped) as {user: hash}."""
    users = {}
    for n, entry in enumerate(text.split(separator), 1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        user, sep, hashed = entry.partition(":")
        if not sep or not user or "$" not in hashed:
            raise PruneScopeError(
                f"auth entry {n} is not `user:hash`", "make each entry with `python -m app.auth USER`"
            )
        users[user] = hashed
    return users


def load_users(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The configured users ({} when auth is not configured)."""
    users = {}
    if env.get(AUTH_FILE_ENV):
        path = Path(env[AUTH_FILE_ENV])
        if not path.is_file():
            raise PruneScopeError(
                f"{AUTH_FILE_ENV} names {path}, which is not a file",
                f"create it with `python -m app.auth USER > {path}`",
            )
        users.update(parse_users(path.read_text()))
    if env.get(USERS_ENV):
        users.update(parse_users(env[USERS_ENV], separator=","))
    return users


def no_auth_requested(env: Mapping[str, str] = os.environ) -> bool:
    return env.get(NO_AUTH_ENV, "").strip().lower() in ("1", "true", "yes")


def is_loopback(host: str) -> bool:
    """Whether a bind address (host, host:port, [v6]:port, unix:path) is only reachable locally."""
    if host.startswith("unix:") or host.startswith("fd://"):
        return True
    if host.startswith("["):
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(binds: list[str], users: Mapping[str, str], no_auth: bool) -> None:
    """Refuse to serve on a non-loopback address without auth (unless told `--no-auth`)."""
    exposed = [b for b in binds if not is_loopback(b)]
    if exposed and not users and not no_auth:
        raise PruneScopeError(f"refusing to serve on {', '.join(exposed)} without authentication", HOW_TO)


class HashedBasicAuth(dash_auth.BasicAuth):
    """dash-auth's basic auth over password hashes; a malformed header is a 401, not a 500.

    Checking a hash costs tens of milliseconds by design; a verified (user, password) is
    remembered in this process under a keyed digest, so each request of a session does not
    pay it again.
    """

    def __init__(self, app: dash.Dash, users: Mapping[str, str]) -> None:
        self._hashes = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        # dash-auth keeps the user in Flask's session: a key every worker derives alike
        session_key = hashlib.sha256("\n".join(sorted(self._hashes.values())).encode()).hexdigest()
        super().__init__(app, auth_func=self._check, secret_key=session_key)

    def _check(self, user: str, password: str) -> bool:
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if token in self._verified:
            return True
        hashed = self._hashes.get(user)
        if hashed is None or not check_password_hash(hashed, password):
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified.add(token)
        return True

    def is_authorized(self) -> bool:
        try:
            return super().is_authorized()
        except (IndexError, ValueError, UnicodeDecodeError):
            return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m app.auth", description="Print a `user:hash` line for PRUNESCOPE_AUTH_FILE."
    )
    ap.add_argument("user")
    ap.add_argument("--password-stdin", action="store_true", help="read the password from standard input (for scripts)")
    args = ap.parse_args(argv)
    if ":" in args.user or "," in args.user or not args.user.strip():
        print("a user name may not be empty or contain ':' or ','", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if password != getpass.getpass("again: "):
            print("the passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("an empty password is not allowed", file=sys.stderr)
        return 2
    print(f"{args.user}:{generate_password_hash(password)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
