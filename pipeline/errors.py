"""User-facing errors (defined with the store contract, which the app imports without the pipeline)."""

from pipeline.store.errors import PruneScopeError

__all__ = ["PruneScopeError"]
