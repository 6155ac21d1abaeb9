"""The units of work of a run (pipeline/plan.py), and how to tell that one is finished.

A unit writes its artefacts atomically and then its record: for a model, a JSON file in
`_units/`; for an evaluation, the samples file itself, which carries the unit's summary in
its Parquet metadata; for robustness, the published clean samples file; for the attribution
sample choice and a model's maps, a JSON file in `_units/` written after the maps. A unit with a
record is finished. Every unit seeds itself from the run seed and its own key, so its result
does not depend on the order or the process the units run in: any executor gives the same store.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import time
import traceback
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import nn

from pipeline import store
from pipeline.attribution import compute_maps, select_samples
from pipeline.config import ModelConfig, RunConfig
from pipeline.corruptions import CorruptionOptions, check_official_labels, corrupt, load_official
from pipeline.datasets import ImageDataset, load_dataset
from pipeline.errors import PruneScopeError
from pipeline.metrics import device_metrics, head_geometry, host_metrics
from pipeline.models import build_model, final_linear, load_state, prunable_layers
from pipeline.mpt import train_mpt
from pipeline.plan import (
    ATTRIBUTION,
    ATTRIBUTION_SAMPLES,
    EVAL,
    IMAGES,
    MODEL,
    ROBUSTNESS,
    ModelPlan,
    Unit,
    model_evalsets,
    plan_models,
)
from pipeline.pruning import (
    PRUNERS,
    PruneContext,
    apply_masks,
    current_masks,
    default_exclusions,
    group_alive,
    make_permanent,
    measure,
    select_layers,
)
from pipeline.store.populations import layer_of
from pipeline.training import Normalizer, extract, finetune, make_normalizer, resolve_device, train_dense

FEATURE_ROWS_LIMIT = 200_000
EVAL_CHUNK_ROWS = 16_384  # rows evaluated together: several small sets share one forward loop and metrics call
IMAGE_CACHE_BYTES = 256 << 20  # a process keeps evaluation sets in memory up to this size (small test sets)
ATTRIBUTION_CHUNK = 32  # samples per Captum call (occlusion multiplies a batch by perturbations_per_eval)
EVAL_META_KEY = "prunescope.evaluation"  # samples-file metadata: the evaluation unit's summary
ROBUSTNESS_META_KEY = "prunescope.robustness"  # published clean file: the sets its robustness counts


def unit_seed(seed: int, key: str) -> int:
    """A seed for one unit that depends only on the run seed and the unit's key."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31 - 1)


@dataclass
class RunContext:
    """Everything units share within one process: config, paths, data, device, the last model loaded.

    The device is resolved on first use, inside the process that runs a unit, so a Dask client
    never initialises CUDA (workers are spawned, never forked after CUDA).
    """

    cfg: RunConfig
    run_dir: Path
    _models: dict[tuple[str, int], tuple[nn.Module, str]] = field(default_factory=dict)
    _images: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    @cached_property
    def device(self) -> torch.device:
        device = resolve_device(self.cfg.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise PruneScopeError('device = "cuda" but no CUDA device is available', 'use device = "auto" or "cpu"')
        return device

    @cached_property
    def data(self) -> ImageDataset:
        d = self.cfg.dataset
        return load_dataset(d.name, d.root, d.train_limit, d.test_limit, **d.options)

    @cached_property
    def num_models(self) -> int:
        return len(plan_models(self.cfg, self.layer_names))

    @cached_property
    def layer_names(self) -> dict[str, list[str]]:
        """The prunable layer names of each dense [[models]] entry (what [[sensitivity]] prunes alone)."""
        return {
            b.id: [n for n, _ in prunable_layers(self.new_model(b)[0])] for b in self.cfg.models if b.parent is None
        }

    @cached_property
    def norm(self) -> Normalizer:
        return make_normalizer(self.data, self.cfg.dataset.normalization)

    def new_model(self, base: ModelConfig) -> tuple[nn.Module, str]:
        """A freshly initialised model for `base` and the name of its final nn.Linear."""
        h, w, c = self.data.image_shape
        model = build_model(
            base.arch, base.import_spec, base.kwargs, c, (h, w), self.data.num_classes, base.factory, base.import_dir
        )
        head_name, head = final_linear(model, self.norm(self.data.test_images[:2], torch.device("cpu")))
        if head.out_features != self.data.num_classes:
            raise PruneScopeError(
                f"model {base.id!r} ends in nn.Linear({head.in_features}, {head.out_features}) "
                f"but the data set has {self.data.num_classes} classes",
                "build the model with one output per class",
            )
        return model, head_name

    def load(self, plan: ModelPlan) -> tuple[nn.Module, str]:
        """The saved model of `plan` and its head's name (the last one loaded stays cached, keyed
        on the checkpoint's modification time, so a rebuilt model is never served stale)."""
        ckpt = store.checkpoint_path(self.run_dir, plan.model_id)
        key = (plan.model_id, ckpt.stat().st_mtime_ns)
        if key not in self._models:
            model, head_name = self.new_model(plan.base)
            load_state(model, ckpt)
            self._models.clear()
            self._models[key] = (model.to(self.device).eval(), head_name)
        return self._models[key]

    def images(self, corruption: str, severity: int) -> np.ndarray:
        """`evalset_images`, kept in memory while the sets kept stay under IMAGE_CACHE_BYTES (every
        evaluation unit of a small test set reads the same sets: from memory, not from the cache files)."""
        key = (corruption, severity)
        if key not in self._images:
            images = evalset_images(self, corruption, severity)
            if images.nbytes + sum(a.nbytes for a in self._images.values()) > IMAGE_CACHE_BYTES:
                return images
            self._images[key] = images
        return self._images[key]


_CONTEXTS: dict[tuple[str, str], RunContext] = {}


def context(cfg: RunConfig, run_dir: Path) -> RunContext:
    """This process's context for the run (one kept: a worker serves one run at a time)."""
    key = (str(Path(run_dir).resolve()), cfg.fingerprint())
    if key not in _CONTEXTS:
        _CONTEXTS.clear()
        _CONTEXTS[key] = RunContext(cfg, Path(run_dir))
    return _CONTEXTS[key]


def _record_path(run_dir: Path, kind: str, key: str) -> Path:
    return run_dir / store.UNITS_DIR / f"{kind}-{key}.json"


def read_record(run_dir: Path, kind: str, key: str) -> dict[str, Any] | None:
    path = _record_path(run_dir, kind, key)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        path.unlink(missing_ok=True)  # a damaged record only means: redo the unit
        return None


def _save_checkpoint(model: nn.Module, path: Path) -> None:
    with store.atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)


def _train_batches(ctx: RunContext, count: int, seed: int):
    """A callable yielding `count` shuffled, normalised training batches (for data-driven scores)."""
    data = ctx.data

    def gen():
        order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(seed))
        size = ctx.cfg.finetune.batch_size
        for i in range(min(count, max(1, len(order) // size))):
            idx = order[i * size : (i + 1) * size]
            yield (
                ctx.norm(data.train_images[idx.numpy()], ctx.device),
                torch.as_tensor(data.train_labels[idx.numpy()]).to(ctx.device),
            )

    return gen


def _prune(ctx: RunContext, plan: ModelPlan, model: nn.Module, head_name: str, seed: int) -> dict[str, Any]:
    """Prune `model` (the parent's weights loaded, or random for mpt) as `plan.spec` says."""
    spec, data, cfg = plan.spec, ctx.data, ctx.cfg
    assert spec is not None
    method_cls = PRUNERS.get(spec.method)
    exclude = list(spec.exclude) + default_exclusions([n for n, _ in prunable_layers(model)], method_cls)
    if method_cls.trains_from_scratch:
        if spec.last_layer_dense:
            exclude.append(head_name)
        layers = select_layers(model, exclude)
        head = dict(model.named_modules())[head_name] if spec.last_layer_dense else None
        train_mpt(
            model,
            layers,
            head,
            spec.sparsity,
            spec.scope,
            spec.init,
            data.train_images,
            data.train_labels,
            ctx.norm,
            ctx.device,
            cfg.mpt,
            seed,
            f"mpt {plan.model_id}",
        )
        return {"init": "random", "target_sparsity": spec.sparsity}
    model.to(ctx.device)
    alone = layer_of(spec.scope)
    layers = select_layers(model, exclude) if alone is None else _one_layer(model, alone)
    scope = spec.scope if alone is None else "layer"  # one layer alone: its own fraction
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, spec.steps + 1):
        amount = 1.0 - (1.0 - spec.sparsity) ** (step / spec.steps)
        params = [getattr(m, "weight_orig", m.weight) for _, m in layers]
        pctx = PruneContext(gen, model, params, _train_batches(ctx, spec.taylor_batches, seed + step))
        masks = method_cls(amount, scope).compute_mask([m.weight for _, m in layers], pctx, current_masks(layers))
        apply_masks(layers, masks)
        if spec.finetune_epochs:
            finetune(
                model,
                data.train_images,
                data.train_labels,
                ctx.norm,
                ctx.device,
                cfg.finetune,
                spec.finetune_epochs,
                seed + step,
                f"fine-tune {plan.model_id} step {step}/{spec.steps}",
            )
    extra: dict[str, Any] = {"init": "parent", "target_sparsity": spec.sparsity}
    if method_cls.group_dim is not None:
        alive = [group_alive(m.weight_mask, method_cls.group_dim) for _, m in layers]
        extra["channel_sparsity"] = float(sum(int((a == 0).sum()) for a in alive) / sum(a.numel() for a in alive))
    make_permanent(model)
    return extra


def _one_layer(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The prunable layer `name` of a `layer:<name>` scope, or an error listing the valid ones."""
    layers = prunable_layers(model)
    chosen = [(n, m) for n, m in layers if n == name]
    if not chosen:
        raise PruneScopeError(
            f"scope 'layer:{name}': the model has no prunable layer {name!r}",
            f"use one of: {', '.join(f'layer:{n}' for n, _ in layers)}",
        )
    return chosen


def run_model_unit(ctx: RunContext, plan: ModelPlan) -> dict[str, Any]:
    """Train (or load) a dense model, or prune its parent; save checkpoint, head and record."""
    cfg, seed = ctx.cfg, unit_seed(ctx.cfg.seed, plan.model_id)
    torch.manual_seed(seed)
    model, head_name = ctx.new_model(plan.base)
    data = ctx.data
    if plan.spec is not None:
        if not PRUNERS.get(plan.spec.method).trains_from_scratch:
            assert plan.parent_id is not None
            load_state(model, store.checkpoint_path(ctx.run_dir, plan.parent_id))
        extra = _prune(ctx, plan, model, head_name, seed)
    elif plan.base.checkpoint:
        extra = {"init": "external" if plan.base.parent else "trained", **load_state(model, Path(plan.base.checkpoint))}
        if plan.base.reported_accuracy is not None:
            extra["reported_accuracy"] = plan.base.reported_accuracy
    else:
        train_dense(
            model, data.train_images, data.train_labels, ctx.norm, ctx.device, cfg.train, seed, f"train {plan.model_id}"
        )
        extra = {"init": "trained" if cfg.train.epochs > 0 else store.INIT_UNTRAINED}
    model.cpu()
    ckpt = store.checkpoint_path(ctx.run_dir, plan.model_id)
    _save_checkpoint(model, ckpt)
    head = dict(model.named_modules())[head_name]
    w = head.weight.detach().float().numpy()
    b = head.bias.detach().float().numpy() if head.bias is not None else np.zeros(len(w), np.float32)
    store.write_table(
        pa.table(
            {
                "class_index": pa.array(np.arange(len(w)), pa.int32()),
                "weight": pa.array(list(w), pa.list_(pa.float32())),
                "bias": pa.array(b, pa.float32()),
            }
        ),
        ctx.run_dir / store.UNITS_DIR / f"head-{plan.model_id}.parquet",
    )
    spec = plan.spec
    parent = next(b for b in ctx.cfg.models if b.id == plan.base.parent) if plan.base.parent else None
    counts = measure(model, ctx.new_model(parent)[0] if parent is not None else None)
    measured = counts["sparsity"]
    record = {
        "model_id": plan.model_id,
        "arch": plan.base.arch or plan.base.import_spec or getattr(plan.base.factory, "__name__", "python"),
        "method": spec.method if spec is not None else (plan.base.method if plan.base.parent else "dense"),
        "scope": None if spec is None else spec.scope,
        "schedule": None if spec is None else spec.schedule,
        "steps": 0 if spec is None else spec.steps,
        "finetune_epochs": 0 if spec is None else spec.finetune_epochs,
        "target_sparsity": measured if plan.base.parent else 0.0,
        "sparsity": measured,
        "params_total": counts["params_total"],
        "params_nonzero": counts["params_nonzero"],
        "parent_id": plan.parent_id,
        "seed": seed,
        "replicate": plan.replicate,
        "population": plan.population,
        "checkpoint": str(ckpt.relative_to(ctx.run_dir)),
        "prunable_layers": [n for n, _ in prunable_layers(model)],
        **extra,
    }
    store.write_json(record, _record_path(ctx.run_dir, "model", plan.model_id))
    return record


GENERATE_CHUNK = 2048


def evalset_images(ctx: RunContext, corruption: str, severity: int) -> np.ndarray:
    """The test images of one evaluation set: clean; read from official CIFAR-10-C files; or
    generated once and cached under `<run>/corrupted/` for every later model and run."""
    data, ev = ctx.data, ctx.cfg.evaluation
    if corruption == store.CLEAN:
        return data.test_images
    n = len(data.test_images)
    if ev.corrupted_root:
        check_official_labels(Path(ev.corrupted_root), data.test_labels)
        images = load_official(Path(ev.corrupted_root), corruption, severity, n)
        if images.shape[1:] != data.test_images.shape[1:]:
            raise PruneScopeError(
                f"official {corruption} images are {images.shape[1:]}, the test set {data.test_images.shape[1:]}",
                "use CIFAR-10-C with the cifar10 data set",
            )
        return images
    cache = ctx.run_dir / store.CORRUPTED_DIR / f"{store.evalset_name(corruption, severity)}.npy"
    with file_lock(cache.parent / f".{cache.name}.lock"):  # a second process wanting the set waits, then reads it
        cached = _load_cached(cache, data.test_images.shape)
        if cached is not None:
            return cached
        options = CorruptionOptions(seed=ctx.cfg.seed, frost_dir=ev.frost_dir)
        ids = np.arange(n)
        images = (
            np.concatenate(
                [
                    corrupt(
                        data.test_images[lo : lo + GENERATE_CHUNK],
                        corruption,
                        severity,
                        ids[lo : lo + GENERATE_CHUNK],
                        options,
                    )
                    for lo in range(0, n, GENERATE_CHUNK)
                ]
            )
            if n
            else data.test_images.copy()
        )
        with store.atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, images)
    return images


def _load_cached(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """A generated set from the cache, or None when it is missing or damaged (then it is regenerated)."""
    try:
        cached = np.load(path)
    except (OSError, ValueError):
        return None
    return cached if cached.shape == shape and cached.dtype == np.uint8 else None


@contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive advisory lock on `path` (created if needed), released when the block ends or
    the process dies. With `wait=False` it yields False at once when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


def features_enabled(cfg: RunConfig, num_models: int, num_test: int, corruption: str) -> bool:
    """Whether to store features for this evaluation set (shared/DESIGN.md §3)."""
    mode = cfg.evaluation.features
    if mode == "none":
        return False
    if corruption == store.CLEAN or mode == "all":
        return True
    if mode == "clean":
        return False
    return num_models * len(cfg.evaluation.evalsets()) * num_test <= FEATURE_ROWS_LIMIT


def run_eval_unit(ctx: RunContext, plan: ModelPlan, evalsets: Sequence[tuple[str, int]]) -> None:
    """Evaluate one model on some evaluation sets (those without a finished samples file):
    per-sample metrics, features, and each set's summary record."""
    todo = [es for es in evalsets if eval_record(ctx.run_dir, plan.model_id, *es) is None]
    if not todo:
        return
    model, head_name = ctx.load(plan)
    ev, labels = ctx.cfg.evaluation, ctx.data.test_labels
    evaluate_sets(
        model,
        dict(model.named_modules())[head_name],
        todo,
        ctx.images,
        labels,
        ctx.norm,
        ctx.device,
        ev.batch_size,
        ev.margin,
        partial(_publish_set, ctx, plan),
    )


Publish = Callable[[str, int, dict[str, np.ndarray], torch.Tensor], None]


def evaluate_sets(
    model: nn.Module,
    head: nn.Linear,
    evalsets: Sequence[tuple[str, int]],
    images: Callable[[str, int], np.ndarray],
    labels: np.ndarray,
    norm: Normalizer,
    device: torch.device,
    batch_size: int,
    margin: str,
    publish: Publish,
) -> None:
    """The evaluation of `model` on `evalsets` (their `images`, one test set's `labels`):
    `publish(corruption, severity, metrics, features)` gets each set's results (N rows each).

    Small sets are evaluated several at a time (one forward loop and one metrics call per
    `EVAL_CHUNK_ROWS` rows: per-call costs dominate sets of a few hundred images). A chunk is
    published after the next one is queued: on a GPU its metrics are copied to pinned host memory
    behind the kernels, and the files are written while the GPU computes the next chunk, with no
    second thread to contend with this one for the interpreter. Every sample's results are those
    of its own forward pass, whichever sets share a chunk (extract: the same at any batch size)."""
    n = len(labels)
    per_chunk = max(1, EVAL_CHUNK_ROWS // max(n, 1))
    weight = head.weight.detach()
    bias = head.bias.detach() if head.bias is not None else None
    geometry = head_geometry(weight)  # once per unit: computing it waits for the device
    previous = None
    for lo in range(0, len(evalsets), per_chunk):
        chunk = evalsets[lo : lo + per_chunk]
        batch = [images(*es) for es in chunk]
        feats = extract(model, head, batch[0] if len(batch) == 1 else np.concatenate(batch), norm, device, batch_size)
        out, y = device_metrics(feats, weight, bias, np.tile(labels, len(chunk)), margin, geometry)
        ready = None
        if feats.is_cuda:
            out = {
                k: torch.empty_like(v, device="cpu").pin_memory().copy_(v, non_blocking=True) for k, v in out.items()
            }
            ready = torch.cuda.Event()
            ready.record()
        if previous is not None:
            _publish_chunk(publish, *previous)
        previous = (chunk, n, out, y, ready, feats)
    if previous is not None:
        _publish_chunk(publish, *previous)


def _publish_chunk(
    publish: Publish,
    chunk: Sequence[tuple[str, int]],
    n: int,
    out: dict[str, torch.Tensor],
    labels: np.ndarray,
    ready: torch.cuda.Event | None,
    feats: torch.Tensor,
) -> None:
    """Once the chunk's metrics are on the host (`ready`), publish each set's rows."""
    if ready is not None:
        ready.synchronize()
    m = host_metrics(out, labels)
    for i, es in enumerate(chunk):
        rows = slice(i * n, (i + 1) * n)
        publish(*es, {k: v[rows] for k, v in m.items()}, feats[rows])


def samples_table(
    corruption: str, severity: int, labels: np.ndarray, m: dict[str, np.ndarray], k: int | None
) -> pa.Table:
    """One evaluation set's samples table (docs/store.md) from its metrics (`sample_metrics`);
    `k` keeps the k nearest classes' angles instead of all (None: every angle)."""
    n, c = m["angles"].shape
    return pa.table(
        {
            "corruption": pa.array([corruption] * n, pa.string()),
            "severity": np.full(n, severity, np.int8),
            "sample_id": np.arange(n, dtype=np.int32),
            "label": labels.astype(np.int16),
            "pred": m["pred"].astype(np.int16),
            "correct": m["correct"],
            "confidence": m["confidence"],
            "loss": m["loss"],
            "length": m["length"],
            "margin": m["margin"],
            "angle": m["angle"],
            **store.angle_columns(m["angles"], k),
            "robustness": np.full(n, np.nan, np.float32),
            "zero_feature": m["zero_feature"],
        },
        schema=store.samples_schema(c, k),
    )


def _publish_set(
    ctx: RunContext, plan: ModelPlan, corruption: str, severity: int, m: dict[str, np.ndarray], feats: torch.Tensor
) -> None:
    """Write one evaluation set's features and samples files; the samples file, written last,
    carries the set's summary record: its existence marks the set done."""
    n, c = m["angles"].shape
    k = None if corruption == store.CLEAN else ctx.cfg.evaluation.angles_stored(c).get("k")
    table = samples_table(corruption, severity, ctx.data.test_labels, m, k)
    if features_enabled(ctx.cfg, ctx.num_models, n, corruption):
        f = feats.cpu().numpy().astype(np.float32)
        store.write_table(
            pa.table(
                {
                    "sample_id": np.arange(n, dtype=np.int32),
                    "corruption": pa.array([corruption] * n, pa.string()),
                    "severity": np.full(n, severity, np.int8),
                    "feature": pa.FixedSizeListArray.from_arrays(f.reshape(-1), f.shape[1]),
                },
                schema=store.features_schema(f.shape[1]),
            ),
            store.features_path(ctx.run_dir, plan.model_id, corruption, severity),
        )
    record = {
        "model_id": plan.model_id,
        "corruption": corruption,
        "severity": severity,
        "n": n,
        "accuracy": float(m["correct"].mean()) if n else float("nan"),
        "mean_angle": float(np.nanmean(m["angle"])) if n else float("nan"),
        "mean_length": float(m["length"].mean()) if n else float("nan"),
        "mean_margin": float(np.nanmean(m["margin"])) if n else float("nan"),
        "correct_bits": base64.b64encode(store.pack_correct(np.arange(n), m["correct"])).decode("ascii"),
    }
    if store.stores_preds(corruption):  # little-endian int16, as evaluations.parquet's `preds` holds them
        record["preds"] = base64.b64encode(store.pack_preds(np.arange(n), m["pred"]).astype("<i2").tobytes()).decode()
    table = table.replace_schema_metadata({EVAL_META_KEY: json.dumps(record)})
    store.write_table(table, eval_output_path(ctx.run_dir, plan.model_id, corruption, severity))


def eval_output_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    """Where an evaluation unit writes its samples: the contract's file, except for the clean
    set, whose rows the robustness unit publishes with their robustness column filled in."""
    if corruption == store.CLEAN:
        return run_dir / store.UNITS_DIR / f"samples-{model_id}-{store.CLEAN}.parquet"
    return store.samples_path(run_dir, model_id, corruption, severity)


def eval_record(run_dir: Path, model_id: str, corruption: str, severity: int) -> dict[str, Any] | None:
    """The summary of a finished evaluation unit, from its samples file (None when not done)."""
    return _file_meta(eval_output_path(run_dir, model_id, corruption, severity), EVAL_META_KEY)


def _file_meta(path: Path, key: str) -> dict[str, Any] | None:
    """One JSON entry of a Parquet file's metadata (None when the file or the entry is missing)."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[key.encode()])
    except (FileNotFoundError, KeyError):
        return None
    except (OSError, pa.ArrowException, json.JSONDecodeError):
        path.unlink(missing_ok=True)  # a damaged file only means: redo the unit
        return None


def run_robustness_unit(ctx: RunContext, plan: ModelPlan) -> None:
    """Publish the clean samples file of a model with per-sample robustness filled in: the
    fraction of the run's corrupted versions of each sample classified correctly (NaN without any),
    and the summary of its relative margin changes (Fig. 10) in the file's footer."""
    run_dir, evalsets = ctx.run_dir, model_evalsets(plan, ctx.cfg.evaluation.evalsets())
    corrupted = [(c, s) for c, s in evalsets if c != store.CLEAN]
    clean = store.read_table(eval_output_path(run_dir, plan.model_id, store.CLEAN, 0))
    margins = store.read_margins(run_dir, plan.model_id, corrupted)  # each file opened once: footer and margins
    if corrupted:
        hits = np.zeros(clean.num_rows, np.float64)
        for (c, s), table in zip(corrupted, margins):
            hits += _correct(run_dir, plan.model_id, c, s, clean.num_rows, table.schema.metadata)
        robustness = pa.array((hits / len(corrupted)).astype(np.float32)).take(
            pc.cast(clean.column("sample_id"), pa.int64())
        )
    else:
        robustness = pa.array(np.full(clean.num_rows, np.nan, np.float32))
    meta = {**clean.schema.metadata, ROBUSTNESS_META_KEY.encode(): json.dumps(corrupted).encode()}
    idx = clean.schema.get_field_index("robustness")
    published = clean.set_column(idx, "robustness", robustness).replace_schema_metadata(meta)
    published = store.with_margin_change(published, margins, corrupted)  # Fig. 10's density: one footer to read
    store.write_samples(published, store.samples_path(run_dir, plan.model_id, store.CLEAN, 0))


def _correct(
    run_dir: Path, model_id: str, corruption: str, severity: int, n: int, footer: dict[bytes, bytes] | None
) -> np.ndarray:
    """Which samples (by id, 0..n-1) an evaluation classified correctly: from its record's bitset
    (in its samples file's `footer`, as already read), or from the file's rows for records written before bitsets."""
    record = (footer or {}).get(EVAL_META_KEY.encode())
    bits = (json.loads(record) if record else {}).get("correct_bits")
    out = np.zeros(n, bool)
    if bits:
        row = np.unpackbits(np.frombuffer(base64.b64decode(bits), np.uint8))[:n]
        out[: len(row)] = row
        return out
    t = store.read_table(store.samples_path(run_dir, model_id, corruption, severity), columns=["sample_id", "correct"])
    out[t.column("sample_id").to_numpy()] = t.column("correct").to_numpy(zero_copy_only=False)
    return out


def run_images_unit(ctx: RunContext) -> None:
    """The clean test images as PNG bytes, for the sample gallery."""
    from PIL import Image

    pngs, data = [], ctx.data
    for img in data.test_images:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    store.write_table(
        pa.table(
            {
                "sample_id": np.arange(len(pngs), dtype=np.int32),
                "label": data.test_labels.astype(np.int16),
                "png": pa.array(pngs, pa.binary()),
            },
            schema=store.IMAGES_SCHEMA,
        ),
        ctx.run_dir / store.IMAGES,
    )


def attribution_sets(cfg: RunConfig) -> list[tuple[str, int]]:
    """The evaluation sets whose images are mapped: clean, and every corrupted one when asked."""
    return cfg.evaluation.evalsets() if cfg.attribution.corrupted else [(store.CLEAN, 0)]


def attribution_samples(run_dir: Path) -> list[int]:
    """The run's samples to map, as the selection unit chose them."""
    record = read_record(run_dir, ATTRIBUTION_SAMPLES, "run")
    assert record is not None, "the attribution_samples unit runs first"
    return record["sample_ids"]


def run_attribution_samples_unit(ctx: RunContext) -> None:
    """Choose the samples every model's maps are made of, once per run, from the clean evaluations."""
    plans = plan_models(ctx.cfg, ctx.layer_names)
    preds, losses = {}, {}
    for p in plans:
        t = store.read_table(eval_output_path(ctx.run_dir, p.model_id, store.CLEAN, 0), ["sample_id", "pred", "loss"])
        order = np.argsort(t.column("sample_id").to_numpy())
        preds[p.model_id] = t.column("pred").to_numpy()[order]
        losses[p.model_id] = t.column("loss").to_numpy()[order]
    parents = {p.model_id: p.parent_id for p in plans if p.parent_id}
    ids = select_samples(ctx.data.test_labels, preds, losses, parents, ctx.cfg.attribution)
    store.write_json({"sample_ids": ids}, _record_path(ctx.run_dir, ATTRIBUTION_SAMPLES, "run"))


def run_attribution_unit(ctx: RunContext, plan: ModelPlan) -> dict[str, Any]:
    """The maps of the run's chosen samples for one model, every method and attributed set, with
    their drift against the parent's maps (Spearman, top-10 % IoU; NaN without a parent)."""
    cfg, data = ctx.cfg.attribution, ctx.data
    ids = np.asarray(attribution_samples(ctx.run_dir), np.int64)
    model, _ = ctx.load(plan)
    h, w, c = data.image_shape
    baseline = ctx.norm(np.zeros((1, h, w, c), np.uint8), ctx.device)  # a black image
    targets = data.test_labels[ids].astype(np.int64)
    start, count = time.perf_counter(), 0
    for corruption, severity in attribution_sets(ctx.cfg):
        images = evalset_images(ctx, corruption, severity)[ids]
        parts = []
        for method in cfg.methods:
            maps = np.concatenate(
                [
                    compute_maps(
                        model,
                        method,
                        ctx.norm(images[lo : lo + ATTRIBUTION_CHUNK], ctx.device),
                        baseline,
                        torch.as_tensor(targets[lo : lo + ATTRIBUTION_CHUNK], device=ctx.device),
                        cfg,
                    )
                    for lo in range(0, len(ids), ATTRIBUTION_CHUNK)
                ]
            ).reshape(len(ids), h * w)
            parts.append((method, maps))
        table = _attribution_table(ids, targets, corruption, severity, parts)
        if plan.parent_id is not None:
            table = _with_drift(table, store.attributions_path(ctx.run_dir, plan.parent_id, corruption, severity))
        store.write_table(table, store.attributions_path(ctx.run_dir, plan.model_id, corruption, severity))
        count += table.num_rows
    record = {"model_id": plan.model_id, "maps": count, "seconds": time.perf_counter() - start}
    store.write_json(record, _record_path(ctx.run_dir, ATTRIBUTION, plan.model_id))
    return record


def _attribution_table(
    ids: np.ndarray, targets: np.ndarray, corruption: str, severity: int, parts: list[tuple[str, np.ndarray]]
) -> pa.Table:
    """One row per (method, sample): the contract's attributions columns, drift NaN."""
    n, rows = len(ids), len(ids) * len(parts)
    maps = np.concatenate([m for _, m in parts]).astype(np.float32)
    return pa.table(
        {
            "sample_id": np.tile(ids, len(parts)).astype(np.int32),
            "corruption": pa.array([corruption] * rows, pa.string()),
            "severity": np.full(rows, severity, np.int8),
            "method": pa.array([name for name, _ in parts for _ in range(n)], pa.string()),
            "target": np.tile(targets, len(parts)).astype(np.int16),
            "map": pa.ListArray.from_arrays(np.arange(rows + 1, dtype=np.int32) * maps.shape[1], maps.reshape(-1)),
            "spearman": np.full(rows, np.nan, np.float32),
            "iou_top10": np.full(rows, np.nan, np.float32),
        },
        schema=store.ATTRIBUTIONS_SCHEMA,
    )


def _with_drift(table: pa.Table, parent_path: Path) -> pa.Table:
    """`table` with spearman and iou_top10 against the parent's maps of the same (sample, method)."""
    parent = store.read_table(parent_path, ["sample_id", "method", "map"])
    where = {
        (s, m): i for i, (s, m) in enumerate(zip(*(parent.column(k).to_pylist() for k in ("sample_id", "method"))))
    }
    rows = [where[key] for key in zip(*(table.column(k).to_pylist() for k in ("sample_id", "method")))]
    width = len(table.column("map")[0]) if table.num_rows else 0

    def stack(col: pa.ChunkedArray) -> np.ndarray:
        return col.combine_chunks().flatten().to_numpy().reshape(-1, width)

    rho, iou = store.map_drift(stack(table.column("map")), stack(parent.column("map"))[rows])
    table = table.set_column(table.schema.get_field_index("spearman"), "spearman", pa.array(rho))
    return table.set_column(table.schema.get_field_index("iou_top10"), "iou_top10", pa.array(iou))


def finished(run_dir: Path, unit: Unit) -> bool:
    """Whether `unit` has its record (a damaged record counts as missing and is removed)."""
    if unit.kind == IMAGES:
        return (run_dir / store.IMAGES).is_file()
    if unit.kind == ATTRIBUTION_SAMPLES:
        return read_record(run_dir, ATTRIBUTION_SAMPLES, "run") is not None
    assert unit.model_id is not None
    if unit.kind == MODEL:
        return read_record(run_dir, "model", unit.model_id) is not None
    if unit.kind == EVAL:
        return all(eval_record(run_dir, unit.model_id, *es) is not None for es in unit.evalsets)
    if unit.kind == ATTRIBUTION:
        return read_record(run_dir, ATTRIBUTION, unit.model_id) is not None
    return _file_meta(store.samples_path(run_dir, unit.model_id, store.CLEAN, 0), ROBUSTNESS_META_KEY) is not None


class UnitFailed(PruneScopeError):
    """A unit raised: the message names the unit and its model; finished units are kept."""


def describe(unit: Unit) -> str:
    """`unit eval:m:fog-3 (model m, evaluation set fog-3)`: how errors and logs name a unit."""
    parts = [f"model {unit.model_id}"] if unit.model_id else []
    names = [store.evalset_name(*es) for es in unit.evalsets]
    if len(names) == 1:
        parts.append(f"evaluation set {names[0]}")
    elif names:
        parts.append(f"evaluation sets {names[0]} to {names[-1]}, {len(names)} sets")
    return f"unit {unit.key}" + (f" ({', '.join(parts)})" if parts else "")


RUNNERS: dict[str, Callable[[RunContext, Unit], Any]] = {
    IMAGES: lambda ctx, unit: run_images_unit(ctx),
    MODEL: lambda ctx, unit: run_model_unit(ctx, unit.model),
    EVAL: lambda ctx, unit: run_eval_unit(ctx, unit.model, unit.evalsets),
    ROBUSTNESS: lambda ctx, unit: run_robustness_unit(ctx, unit.model),
    ATTRIBUTION_SAMPLES: lambda ctx, unit: run_attribution_samples_unit(ctx),
    ATTRIBUTION: lambda ctx, unit: run_attribution_unit(ctx, unit.model),
}


def execute(cfg: RunConfig, run_dir: Path, threads: int, unit: Unit) -> None:
    """Run one unit in this process with `threads` torch CPU threads (what every executor calls,
    wherever it runs the unit; CPU float results depend on the thread count, so it is fixed per run).

    Any failure becomes a UnitFailed naming the unit and its model; an unexpected one also
    leaves its traceback in `_units/failed-<unit>.log`."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        RUNNERS[unit.kind](context(cfg, run_dir), unit)
    except PruneScopeError as exc:
        raise UnitFailed(f"{describe(unit)}: {exc.problem}", exc.fix) from None
    except Exception as exc:
        log = Path(run_dir) / store.UNITS_DIR / f"failed-{unit.key.replace(':', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{describe(unit)} on {os.uname().nodename} pid {os.getpid()}\n{traceback.format_exc()}")
        raise UnitFailed(
            f"{describe(unit)} failed: {type(exc).__name__}: {exc}",
            f"the traceback is in {log}; fix the cause and run the same command again (finished units are kept)",
        ) from exc
    finally:
        torch.set_num_threads(before)
