"""PruneScope's offline pipeline: train, prune, evaluate, and write the per-sample geometry store.

Importing the package is cheap and torch-free (the app imports `pipeline.store`, the
contract); the modules that need torch import it themselves.
"""
