"""gunicorn settings for the PruneScope team server (read from the repository root by default).

    PRUNESCOPE_STORE=/data/store PRUNESCOPE_AUTH_FILE=users.txt gunicorn -w 4 -b 0.0.0.0:8050 'app:server'

Binding beyond loopback without users configured refuses to start (PRUNESCOPE_NO_AUTH=1 for
servers behind their own authenticating proxy). This is the early, friendly refusal; the app itself
answers 403 to every request through such a listener however it was started (app/guard.py).
"""

import os

bind = os.environ.get("PRUNESCOPE_BIND", "127.0.0.1:8050")
workers = int(os.environ.get("PRUNESCOPE_WORKERS", "4"))
timeout = 120  # a first look at a big run reads and memoises its matrices
graceful_timeout = 30


def on_starting(server):
    """Refuse an exposed bind without auth, before any socket is opened."""
    from app.auth import check_bind, load_users, no_auth_requested
    from pipeline.errors import PruneScopeError

    try:
        check_bind(list(server.cfg.bind), load_users(), no_auth_requested())
    except PruneScopeError as exc:
        raise RuntimeError(f"{exc.problem}\nfix: {exc.fix}") from None


control_socket_disable = True  # several servers (tests, benchmarks) may run side by side
