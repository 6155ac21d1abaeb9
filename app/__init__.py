"""PruneScope's Dash app: reads the store (never torch), shows the linked views.

`app:server` is the WSGI application for gunicorn, built on first access from
`PRUNESCOPE_STORE` (default cache/store) and `PRUNESCOPE_RUN`.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "server":
        import os
        from pathlib import Path

        from app.main import REPO, create_app

        dash_app = create_app(os.environ.get("PRUNESCOPE_STORE", str(Path(REPO) / "cache" / "store")), os.environ.get("PRUNESCOPE_RUN"))
        globals()["server"] = dash_app.server
        return dash_app.server
    raise AttributeError(f"module 'app' has no attribute {name!r}")
