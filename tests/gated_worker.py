"""`python -m celery -A tests.gated_worker:celery_app worker`: the team server's worker, except that a
snapshot job waits for the file named by PRUNESCOPE_TEST_GATE before it builds anything, so a
test can cancel the job, or kill its worker, while the job is surely running."""

from __future__ import annotations

import os
import time
from pathlib import Path

import app.views.export as export_view
from app import celery_app

_build = export_view.build_snapshot


def _gated_build(*args, **kwargs):
    gate = Path(os.environ["PRUNESCOPE_TEST_GATE"])
    while not gate.exists():
        time.sleep(0.05)
    return _build(*args, **kwargs)


export_view.build_snapshot = _gated_build
__all__ = ["celery_app"]
