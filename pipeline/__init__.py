"""PruneScope's offline pipeline: train, prune, evaluate, and write the per-sample geometry store.

Importing the package is cheap and torch-free (the app imports `pipeline.store`, the
contract); the modules that need torch import it themselves. `pipeline.analyze` (the
notebook API) is loaded on first use.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from pipeline.api import analyze

        return analyze
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
