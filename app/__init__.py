"""PruneScope's Dash app: reads the store (never torch), shows the linked views.

`app:server` is the WSGI application for gunicorn, built on first access from the
environment: `PRUNESCOPE_STORE` (default cache/store), `PRUNESCOPE_RUN`, `PRUNESCOPE_CACHE`
(default cache/diskcache) and the auth settings of `app.auth` (`PRUNESCOPE_AUTH_FILE` or
`PRUNESCOPE_USERS`). `app:celery_app` is the Celery application for
`celery -A app:celery_app worker` when `REDIS_URL` is set.
"""

from typing import Any


def _dash_app() -> Any:
    import os
    from pathlib import Path

    from app.auth import load_users
    from app.main import REPO, create_app

    repo = Path(REPO)
    return create_app(
        os.environ.get("PRUNESCOPE_STORE", str(repo / "cache" / "store")), os.environ.get("PRUNESCOPE_RUN"),
        cache_dir=os.environ.get("PRUNESCOPE_CACHE", str(repo / "cache" / "diskcache")), users=load_users(),
    )


def __getattr__(name: str) -> Any:
    if name in ("server", "celery_app"):
        dash_app = _dash_app()
        globals()["server"] = dash_app.server
        globals()["celery_app"] = getattr(dash_app._background_manager, "handle", None)
        return globals()[name]
    raise AttributeError(f"module 'app' has no attribute {name!r}")
