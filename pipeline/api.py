"""The Python API: analyse model objects from a notebook into the same store as the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from pipeline import store as store_mod
from pipeline.config import parse_config
from pipeline.errors import PruneScopeError
from pipeline.runner import build_run


def _stash(model: nn.Module, folder: Path) -> Path:
    """Save a state_dict under a content-addressed name, so the same weights give the same config."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    path = folder / f"{hashlib.sha256(data).hexdigest()[:20]}.pt"
    if not path.is_file():
        with store_mod.atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return path


def analyze(
    models: Mapping[str, nn.Module],
    dataset: str = "digits",
    store: str | Path = "cache/store",
    run: str = "notebook",
    parent: str | None = None,
    dataset_root: str | None = None,
    test_limit: int | None = None,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    device: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Evaluate trained model objects and write their per-sample geometry as run `run`.

    `models` maps names to models (each ending in an `nn.Linear`). With `parent`, the model
    of that name is the dense reference and every other model is recorded as pruned from it
    (its sparsity measured). Returns the run folder. An existing run is resumed when called
    again with the same weights, and replaced only with `overwrite=True`.
    """
    if not models:
        raise PruneScopeError("analyze() got no models", "pass models={'name': model, ...}")
    if parent is not None and parent not in models:
        raise PruneScopeError(f"parent {parent!r} is not one of the models", f"use one of: {', '.join(models)}")
    store_dir = Path(store)
    incoming = store_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for name, model in models.items():
        if not isinstance(model, nn.Module):
            raise PruneScopeError(
                f"models[{name!r}] is a {type(model).__name__}, not an nn.Module", "pass the model objects"
            )
        entry: dict[str, Any] = {
            "id": name,
            "import": f"python:{type(model).__name__}",
            "checkpoint": str(_stash(model, incoming)),
        }
        if parent is not None and name != parent:
            entry["parent"] = parent
        entries.append(entry)
    raw: dict[str, Any] = {
        "name": run,
        "device": device,
        "dataset": {
            "name": dataset,
            **({"root": dataset_root} if dataset_root else {}),
            **({"test_limit": test_limit} if test_limit else {}),
        },
        "models": entries,
        "evaluation": {"corruptions": list(corruptions), "severities": list(severities)},
    }
    cfg = parse_config(raw)
    by_name = dict(models)
    cfg = dataclasses.replace(
        cfg, models=tuple(dataclasses.replace(m, factory=lambda m=by_name[m.id]: _fresh_copy(m)) for m in cfg.models)
    )
    return build_run(cfg, store_dir, force=overwrite).run_dir


def _fresh_copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu()
