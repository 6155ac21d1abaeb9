"""The dashboard's views, one module each: `layout()`, `register(app, reader)` for its callbacks
and, where it has a share of the HTML snapshot, `snapshot(ctx) -> app.snapshot.Part`.
A new view is one module here (plus its figure builder in app/figures/) and one entry in `views()`."""

from __future__ import annotations

from types import ModuleType


def views() -> tuple[ModuleType, ...]:
    """Every view, in page order (the snapshot draws its parts in this order). Imported when
    asked for: the export view builds snapshots, which loop over the views."""
    from app.views import (
        attribution,
        combinations,
        dimension,
        evaltable,
        export,
        global_,
        local,
        modelmap,
        pie,
        problems,
        robustness,
        samples,
        sensitivity,
        similarity,
    )

    return (
        problems,
        evaltable,
        combinations,
        modelmap,
        similarity,
        local,
        global_,
        samples,
        robustness,
        sensitivity,
        pie,
        attribution,
        dimension,
        export,
    )
