"""The Python API: analyse model objects from a notebook into the same store as the CLI."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from pipeline import store as store_mod
from pipeline.checks import check_store_dir
from pipeline.config import parse_config
from pipeline.errors import PruneScopeError
from pipeline.pruning import make_permanent
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
    method: str | Mapping[str, str] = "external",
    dataset_options: Mapping[str, Any] | None = None,
    normalization: str | Mapping[str, Sequence[float]] = "train",
    reported_accuracy: Mapping[str, float] | None = None,
) -> Path:
    """Evaluate trained model objects and write their per-sample geometry as run `run`.

    `models` maps names (kept as the model ids) to models, each ending in an `nn.Linear`;
    a model pruned with `torch.nn.utils.prune` and not `prune.remove`d is taken with its
    masks folded in. With `parent`, the model of that name is the dense reference and every
    other model is recorded as pruned from it under the label `method` (one for all, or per
    name), its sparsity measured against the parent. `dataset_options` and `normalization`
    are those of the config's `[dataset]`; `reported_accuracy` (per name) the accuracy a
    model reached where it was trained, to warn when PruneScope measures far less. Returns
    the run folder. An existing run is resumed when called again with the same weights, and
    replaced only with `overwrite=True`.
    """
    if not models:
        raise PruneScopeError("analyze() got no models", "pass models={'name': model, ...}")
    if parent is not None and parent not in models:
        raise PruneScopeError(f"parent {parent!r} is not one of the models", f"use one of: {', '.join(models)}")
    store_dir = check_store_dir(Path(store))
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
            entry["method"] = method if isinstance(method, str) else method.get(name, "external")
        if reported_accuracy and name in reported_accuracy:
            entry["reported_accuracy"] = reported_accuracy[name]
        entries.append(entry)
    raw: dict[str, Any] = {
        "name": run,
        "device": device,
        "dataset": {
            "name": dataset,
            **({"root": dataset_root} if dataset_root else {}),
            **({"test_limit": test_limit} if test_limit is not None else {}),
            **({"options": dict(dataset_options)} if dataset_options else {}),
            **({"normalization": _plain(normalization)} if normalization != "train" else {}),
        },
        "models": entries,
        "evaluation": {"corruptions": list(corruptions), "severities": list(severities)},
    }
    cfg = parse_config(raw)
    by_name = dict(models)
    cfg = dataclasses.replace(
        cfg, models=tuple(dataclasses.replace(m, factory=lambda m=by_name[m.id]: _fresh_copy(m)) for m in cfg.models)
    )
    summary = build_run(cfg, store_dir, force=overwrite, force_option="overwrite=True")
    for note in summary.warnings:
        warnings.warn(note, stacklevel=2)
    return summary.run_dir


def _plain(normalization: str | Mapping[str, Sequence[float]]) -> str | dict[str, list[float]]:
    return normalization if isinstance(normalization, str) else {k: list(v) for k, v in normalization.items()}


def _fresh_copy(model: nn.Module) -> nn.Module:
    """A CPU copy of `model` with its `torch.nn.utils.prune` masks folded in (`prune.remove`).

    A pruned module's `weight` is a computed tensor, which `deepcopy` refuses: the copy takes
    a detached one, recomputed by the copied pruning hook until `make_permanent` folds it.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                computed = getattr(module, hook._tensor_name)
                memo[id(computed)] = computed.detach().clone()
    copied = copy.deepcopy(model, memo)
    make_permanent(copied)
    return copied.cpu()
