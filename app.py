"""PruneScope dashboard: `python app.py [--store DIR] [--run NAME] [--host H] [--port P] [--no-auth]`.

With no run in the store yet, it first builds the demo run (configs/demo.toml, progress in
the terminal, in a separate process: the app itself never imports torch), then serves.
Serving beyond loopback needs users (see app/auth.py) or an explicit --no-auth.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python app.py", description="Serve the PruneScope dashboard.")
    ap.add_argument(
        "--store",
        default=os.environ.get("PRUNESCOPE_STORE", str(REPO / "cache" / "store")),
        help="store folder (default: %(default)s)",
    )
    ap.add_argument("--run", default=os.environ.get("PRUNESCOPE_RUN"), help="run to open (default: the first)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument(
        "--no-auth",
        action="store_true",
        help="serve beyond loopback without HTTP auth (only behind your own authenticating proxy)",
    )
    args = ap.parse_args(argv)

    from app.auth import check_bind, load_users, no_auth_requested
    from pipeline.errors import PruneScopeError

    try:
        users = load_users()
        no_auth = args.no_auth or no_auth_requested()
        check_bind([args.host], users, no_auth)
    except PruneScopeError as exc:
        print(f"error: {exc.problem}\nfix: {exc.fix}", file=sys.stderr)
        return 2

    from pipeline.store import list_runs

    if not list_runs(Path(args.store)):
        print(f"no run in {args.store} yet: building the demo run first (about a minute)", flush=True)
        build = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(REPO / "configs" / "demo.toml"), "--store", args.store],
            cwd=REPO,
        )
        if build.returncode != 0:
            return build.returncode
    from app.main import create_app

    dash_app = create_app(args.store, args.run, users=users, no_auth=no_auth)
    print(
        f"PruneScope on http://{args.host}:{args.port}/ "
        f"(store {args.store}{', basic auth for ' + str(len(users)) + ' users' if users else ''})",
        flush=True,
    )
    dash_app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
