"""PruneScope's Dash app: reads the store (never torch), shows the linked views.

`app:server` is the WSGI application for gunicorn, built on first access from the
environment: `PRUNESCOPE_STORE` (default cache/store), `PRUNESCOPE_RUN`, `PRUNESCOPE_CACHE`
(default cache/diskcache), the auth settings of `app.auth` (`PRUNESCOPE_AUTH_FILE` or
`PRUNESCOPE_USERS`, `PRUNESCOPE_NO_AUTH`) and `PRUNESCOPE_MAX_BODY_MB` (app.guard).
`app:celery_app` is the Celery application for `python -m celery -A app:celery_app worker`
when `REDIS_URL` is set.
"""

from functools import cache
from typing import Any


@cache
def _dash_app() -> Any:
    """The one Dash app of this process, built from the environment."""
    import os
    from pathlib import Path

    from app.auth import load_users, no_auth_requested
    from app.main import REPO, create_app

    repo = Path(REPO)
    return create_app(
        os.environ.get("PRUNESCOPE_STORE", str(repo / "cache" / "store")),
        os.environ.get("PRUNESCOPE_RUN"),
        cache_dir=os.environ.get("PRUNESCOPE_CACHE", str(repo / "cache" / "diskcache")),
        users=load_users(),
        no_auth=no_auth_requested(),
    )


def __getattr__(name: str) -> Any:
    if name == "server":
        globals()["server"] = _dash_app().server
        return globals()["server"]
    if name == "celery_app":
        import dash

        manager = _dash_app()._background_manager
        if not isinstance(manager, dash.CeleryManager):
            raise AttributeError(
                "app:celery_app exists only with REDIS_URL set (background jobs then run on Celery workers)"
            )
        globals()["celery_app"] = manager.handle
        return manager.handle
    raise AttributeError(f"module 'app' has no attribute {name!r}")
