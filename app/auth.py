"""HTTP basic auth for the team server, and the rule that only loopback may go without it.

Users and password hashes come from a file (`PRUNESCOPE_AUTH_FILE`, lines `user:hash`) or the
environment (`PRUNESCOPE_USERS="user:hash,user:hash"`); hashes are werkzeug's
(`python -m app.auth USER` prints a line for the file). Passwords are never stored.

    python -m app.auth alice >> users.txt
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dash
import dash_auth
import flask
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
    """Whether a bind address (host, host:port, [v6]:port, unix:path, fd://N) is only reachable locally;
    `fd://N` is looked up: the socket open as descriptor N in this process, not the words."""
    if host.startswith("unix:"):
        return True
    if host.startswith("fd://"):
        return _fd_is_loopback(host[len("fd://") :])
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


def _fd_is_loopback(fd: str) -> bool:
    """Whether the inherited socket `fd` is a Unix socket or listens on a loopback address."""
    try:
        with socket.socket(fileno=os.dup(int(fd))) as sock:
            if sock.family == socket.AF_UNIX:
                return True
            return is_loopback(str(sock.getsockname()[0]))
    except (ValueError, OSError):
        return False


def served_locally(environ: Mapping[str, Any]) -> bool:
    """Whether a request came through a loopback (or Unix socket) listener, from the WSGI environ of
    whatever server runs the app: gunicorn and werkzeug set SERVER_NAME to the listening socket's
    address (not the Host header) for TCP, and hand over the socket itself."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if getattr(sock, "family", None) == socket.AF_UNIX:
        return True
    return is_loopback(str(environ.get("SERVER_NAME", "")))


def check_bind(binds: list[str], users: Mapping[str, str], no_auth: bool) -> None:
    """Refuse to serve on a non-loopback address without auth (unless told `--no-auth`)."""
    exposed = [b for b in binds if not is_loopback(b)]
    if exposed and not users and not no_auth:
        raise PruneScopeError(f"refusing to serve on {', '.join(exposed)} without authentication", HOW_TO)


class Backoff:
    """Failed logins per client, bounded: after `free` failures in a row a client waits `first` seconds
    before its next try is checked, twice as long after each further failure, at most `cap` seconds; a
    success forgets it. At most `max_clients` clients are remembered (the longest idle dropped first).
    Each worker process counts on its own."""

    def __init__(
        self,
        free: int = 5,
        first: float = 1.0,
        cap: float = 30.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.first, self.cap, self.max_clients, self.clock = free, first, cap, max_clients, clock
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client: (failures, next try at)
        self._lock = threading.Lock()  # threaded workers share one

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again (0: now)."""
        entry = self._clients.get(client)
        return max(0.0, entry[1] - self.clock()) if entry else 0.0

    def failed(self, client: str) -> None:
        with self._lock:
            failures = self._clients.pop(client, (0, 0.0))[0] + 1
            extra = failures - self.free
            delay = 0.0 if extra <= 0 else min(self.cap, self.first * 2 ** min(extra - 1, 30))
            self._clients[client] = (failures, self.clock() + delay)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


def _credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of a `Basic` Authorization header, None when there is none or it is malformed."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class HashedBasicAuth(dash_auth.BasicAuth):
    """dash-auth's basic auth over password hashes, checked by the request gate (app/guard.py) before the
    body is read: dash-auth's own hook, which parses a callback's JSON body first, is not installed.

    Checking a hash costs tens of milliseconds by design; a verified (user, password) is remembered in
    this process under a keyed digest, so each request of a session does not pay it again. An unknown
    user is checked against a dummy hash of the same method, so a wrong password costs the same time
    whether the user exists or not; repeated failures from one client back off (`Backoff`: 429).
    """

    def __init__(self, app: dash.Dash, users: Mapping[str, str], backoff: Backoff | None = None) -> None:
        self._hashes = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self.backoff = backoff or Backoff()
        method = Counter(h.split("$", 1)[0] for h in self._hashes.values()).most_common(1)[0][0]
        self._dummy = generate_password_hash(secrets.token_urlsafe(16), method=method)
        super().__init__(app, auth_func=self._check)

    def _protect(self) -> None:
        """Nothing: app/guard.py calls `check` in its gate, after the body cap and before the body is read."""

    def _token(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()

    def _check(self, user: str, password: str) -> bool:
        token = self._token(user, password)
        if token in self._verified:
            return True
        hashed = self._hashes.get(user)
        if not check_password_hash(hashed or self._dummy, password) or hashed is None:
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified.add(token)
        return True

    def check(self) -> flask.Response | None:
        """None when the request's credentials are good; else 401, or 429 while its client backs off
        (a client whose credentials this process already verified is never held back)."""
        credentials = _credentials(flask.request.headers.get("Authorization"))
        if credentials is None:
            return self.login_request()
        client = flask.request.remote_addr or ""
        if self._token(*credentials) not in self._verified:
            wait = self.backoff.wait(client)
            if wait > 0:
                return flask.Response(
                    f"too many failed logins from {client}: try again in {math.ceil(wait)} s",
                    status=429,
                    headers={"Retry-After": str(math.ceil(wait))},
                    mimetype="text/plain",
                )
        if self._check(*credentials):
            self.backoff.succeeded(client)
            return None
        self.backoff.failed(client)
        return self.login_request()


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
