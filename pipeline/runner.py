"""Build or resume a run: independent units of work, each finished by an atomic record.

Units: one per model (train the dense model, or prune a parent) and one per
model × evaluation set. A unit writes its artefacts atomically and then its record (for a
model, a JSON file in `_units/`; for an evaluation, the samples file itself, which carries
the unit's summary in its Parquet metadata); a unit with a record is done. A killed run,
started again, redoes only the units without a record. Every unit seeds itself from the run
seed and its own key, so the result
does not depend on the order or the process the units run in (the hook for a distributed
executor). The contract tables are assembled from the records at the end of every run.
"""

from __future__ import annotations

import fcntl
import io
import json
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline import store
from pipeline.checks import check_store_dir, model_warnings
from pipeline.config import ModelConfig, PruneSpec, RunConfig
from pipeline.corruptions import CorruptionOptions, check_official_labels, corrupt, load_official
from pipeline.datasets import ImageDataset, load_dataset
from pipeline.errors import PruneScopeError
from pipeline.metrics import sample_metrics
from pipeline.models import build_model, final_linear, load_state, prunable_layers
from pipeline.mpt import train_mpt
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
from pipeline.training import Normalizer, extract, finetune, make_normalizer, resolve_device, train_dense

FEATURE_ROWS_LIMIT = 200_000
EVAL_META_KEY = "prunescope.evaluation"  # samples-file metadata: the evaluation unit's summary


@dataclass(frozen=True)
class ModelPlan:
    """One model of the run: a dense base (`spec` None) or a pruned child of `parent_id`."""

    model_id: str
    base: ModelConfig
    spec: PruneSpec | None = None
    parent_id: str | None = None


def plan_models(cfg: RunConfig) -> list[ModelPlan]:
    """Every model of the run, parents before children; models pruned elsewhere last."""
    plans = []
    dense = {base.id: base.model_id for base in cfg.models if base.parent is None}
    for base in cfg.models:
        if base.parent is None:
            plans.append(ModelPlan(base.model_id, base))
            plans += [
                ModelPlan(store.check_id(spec.model_id(base.id)), base, spec, base.model_id) for spec in cfg.prune
            ]
    plans += [
        ModelPlan(base.model_id, base, None, dense[base.parent]) for base in cfg.models if base.parent is not None
    ]
    ids = [p.model_id for p in plans]
    if len(set(ids)) != len(ids):
        raise PruneScopeError("two [[prune]] entries describe the same model", "remove the repeated combination")
    return plans


def unit_seed(seed: int, key: str) -> int:
    """A seed for one unit that depends only on the run seed and the unit's key."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31 - 1)


@dataclass
class RunContext:
    """Everything units share within one process: config, paths, data, device, loaded models."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device = field(init=False)
    _models: dict[str, tuple[nn.Module, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.device = resolve_device(self.cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise PruneScopeError('device = "cuda" but no CUDA device is available', 'use device = "auto" or "cpu"')

    @cached_property
    def data(self) -> ImageDataset:
        d = self.cfg.dataset
        return load_dataset(d.name, d.root, d.train_limit, d.test_limit, **d.options)

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
        """The saved model of `plan` and its head's name (the last one loaded stays cached)."""
        if plan.model_id not in self._models:
            model, head_name = self.new_model(plan.base)
            load_state(model, store.checkpoint_path(self.run_dir, plan.model_id))
            self._models.clear()
            self._models[plan.model_id] = (model.to(self.device).eval(), head_name)
        return self._models[plan.model_id]


def _record_path(run_dir: Path, kind: str, key: str) -> Path:
    return run_dir / store.UNITS_DIR / f"{kind}-{key}.json"


def _read_record(run_dir: Path, kind: str, key: str) -> dict[str, Any] | None:
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
    exclude = list(spec.exclude) + default_exclusions(model, method_cls)
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
    layers = select_layers(model, exclude)
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, spec.steps + 1):
        amount = 1.0 - (1.0 - spec.sparsity) ** (step / spec.steps)
        params = [getattr(m, "weight_orig", m.weight) for _, m in layers]
        pctx = PruneContext(gen, model, params, _train_batches(ctx, spec.taylor_batches, seed + step))
        masks = method_cls(amount, spec.scope).compute_mask([m.weight for _, m in layers], pctx, current_masks(layers))
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
    if cache.is_file():
        try:
            cached = np.load(cache)
            if cached.shape == data.test_images.shape and cached.dtype == np.uint8:
                return cached
        except (OSError, ValueError):
            pass  # a damaged cache file is regenerated below
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


def run_eval_unit(ctx: RunContext, plan: ModelPlan, corruption: str, severity: int, num_models: int) -> dict[str, Any]:
    """Evaluate one model on one evaluation set: per-sample metrics, features, summary record."""
    model, head_name = ctx.load(plan)
    head = dict(model.named_modules())[head_name]
    data = ctx.data
    images = evalset_images(ctx, corruption, severity)
    feats = extract(model, head, images, ctx.norm, ctx.device, ctx.cfg.evaluation.batch_size)
    bias = head.bias.detach() if head.bias is not None else None
    m = sample_metrics(
        feats, head.weight.detach(), bias, torch.as_tensor(data.test_labels), margin=ctx.cfg.evaluation.margin
    )
    n, c = m["angles"].shape
    sev = np.full(n, severity, np.int8)
    table = pa.table(
        {
            "corruption": pa.array([corruption] * n, pa.string()),
            "severity": sev,
            "sample_id": np.arange(n, dtype=np.int32),
            "label": data.test_labels.astype(np.int16),
            "pred": m["pred"].astype(np.int16),
            "correct": m["correct"],
            "confidence": m["confidence"],
            "loss": m["loss"],
            "length": m["length"],
            "margin": m["margin"],
            "angle": m["angle"],
            "angles": pa.FixedSizeListArray.from_arrays(m["angles"].reshape(-1), c),
            "robustness": np.full(n, np.nan, np.float32),
            "zero_feature": m["zero_feature"],
        },
        schema=store.samples_schema(c),
    )
    if features_enabled(ctx.cfg, num_models, n, corruption):
        f = feats.cpu().numpy().astype(np.float32)
        store.write_table(
            pa.table(
                {
                    "sample_id": np.arange(n, dtype=np.int32),
                    "corruption": pa.array([corruption] * n, pa.string()),
                    "severity": sev,
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
    }
    # The samples file is written last and carries the unit's summary: its existence marks the unit done.
    table = table.replace_schema_metadata({EVAL_META_KEY: json.dumps(record)})
    store.write_table(table, store.samples_path(ctx.run_dir, plan.model_id, corruption, severity))
    return record


def _eval_record(run_dir: Path, model_id: str, corruption: str, severity: int) -> dict[str, Any] | None:
    """The summary of a finished evaluation unit, from its samples file (None when not done)."""
    path = store.samples_path(run_dir, model_id, corruption, severity)
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[EVAL_META_KEY.encode()])
    except (FileNotFoundError, KeyError):
        return None
    except (OSError, pa.ArrowException, json.JSONDecodeError):
        path.unlink(missing_ok=True)  # a damaged file only means: redo the unit
        return None


def write_robustness(run_dir: Path, model_id: str, evalsets: list[tuple[str, int]]) -> None:
    """Per-sample robustness (fraction of corrupted versions classified correctly) on the clean rows."""
    corrupted = [(c, s) for c, s in evalsets if c != store.CLEAN]
    clean_path = store.samples_path(run_dir, model_id, store.CLEAN, 0)
    clean = store.read_table(clean_path)
    if corrupted:
        hits = np.zeros(clean.num_rows, np.float64)
        for c, s in corrupted:
            t = store.read_table(store.samples_path(run_dir, model_id, c, s), columns=["sample_id", "correct"])
            np.add.at(hits, t.column("sample_id").to_numpy(), t.column("correct").to_numpy(zero_copy_only=False))
        robustness = pa.array((hits / len(corrupted)).astype(np.float32)).take(
            pc.cast(clean.column("sample_id"), pa.int64())
        )
    else:
        robustness = pa.array(np.full(clean.num_rows, np.nan, np.float32))
    idx = clean.schema.get_field_index("robustness")
    updated = clean.set_column(idx, "robustness", robustness).replace_schema_metadata(clean.schema.metadata)
    store.write_table(updated, clean_path)


def write_images(run_dir: Path, data: ImageDataset) -> None:
    """The clean test images as PNG bytes, for the sample gallery."""
    from PIL import Image

    pngs = []
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
        run_dir / store.IMAGES,
    )


def assemble(run_dir: Path, plans: list[ModelPlan], evalsets: list[tuple[str, int]]) -> None:
    """Write models, evaluations and heads tables from the unit records."""
    models, evals, heads = [], [], []
    for plan in plans:
        rec = _read_record(run_dir, "model", plan.model_id)
        assert rec is not None, plan.model_id
        for c, s in evalsets:
            ev = _eval_record(run_dir, plan.model_id, c, s)
            assert ev is not None, (plan.model_id, c, s)
            evals.append(ev)
            if c == store.CLEAN:
                rec["clean_accuracy"] = ev["accuracy"]
        models.append(rec)
        head = store.read_table(run_dir / store.UNITS_DIR / f"head-{plan.model_id}.parquet")
        heads.append(head.add_column(0, "model_id", pa.array([plan.model_id] * head.num_rows, pa.string())))
    store.write_table(pa.Table.from_pylist(models, schema=store.MODELS_SCHEMA), run_dir / store.MODELS)
    store.write_table(pa.Table.from_pylist(evals, schema=store.EVALUATIONS_SCHEMA), run_dir / store.EVALUATIONS)
    store.write_table(
        pa.concat_tables(heads).select(store.HEADS_SCHEMA.names).cast(store.HEADS_SCHEMA), run_dir / store.HEADS
    )


@dataclass
class RunSummary:
    run_dir: Path
    models: int
    evaluations: int
    units_done: int
    units_reused: int
    seconds: float
    clean_accuracy: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        best = max(self.clean_accuracy.values()) if self.clean_accuracy else float("nan")
        return (
            f"run {self.run_dir.name}: {self.models} models, {self.evaluations} evaluations "
            f"({self.units_done} units computed, {self.units_reused} reused) in {self.seconds:.1f} s; "
            f"best clean accuracy {best:.3f} -> {self.run_dir}"
        )


@contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    """An exclusive lock on the run folder, so two processes never build one run at once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PruneScopeError(
            f"run {run_dir} is being built by another process", "wait for it to finish, or stop it"
        ) from None
    try:
        yield
    finally:
        handle.close()


def _prepare_run_dir(cfg: RunConfig, run_dir: Path, force: bool, force_option: str) -> None:
    if run_dir.exists() and (run_dir / store.RUN_JSON).is_file():
        if force:
            store.remove_run(run_dir)
            return
        try:
            meta = store.read_run_json(run_dir)
        except PruneScopeError as exc:
            raise PruneScopeError(exc.problem, f"rebuild it with {force_option}, or give the config another `name`")
        if json.dumps(meta.get("config"), sort_keys=True, default=str) != cfg.fingerprint():
            raise PruneScopeError(
                f"run {run_dir} exists and was built from a different config",
                f"pass {force_option} to rebuild it, or give the config another `name`",
            )
        elif store.margin_definition(meta) != cfg.evaluation.margin:  # runs from before eq. 5 was the default
            raise PruneScopeError(
                f"run {run_dir} holds the {store.margin_definition(meta)!r} margin, "
                f"the config asks for {cfg.evaluation.margin!r}",
                f'pass --force to rebuild it, or set [evaluation] margin = "{store.margin_definition(meta)}"',
            )
    elif run_dir.exists() and any(p.name != ".lock" for p in run_dir.iterdir()):
        raise PruneScopeError(
            f"{run_dir} exists and is not a PruneScope run", "choose another run `name` or another --store"
        )


def build_run(cfg: RunConfig, store_dir: Path, force: bool = False, force_option: str = "--force") -> RunSummary:
    """Build (or resume) the run described by `cfg` in `store_dir/<name>`.

    `force` replaces an existing run; `force_option` is how the caller spells it in hints.
    """
    start = time.perf_counter()
    run_dir = check_store_dir(Path(store_dir)) / cfg.name
    _prepare_run_dir(cfg, run_dir, force, force_option)
    with _lock(run_dir):
        return _build(cfg, run_dir, start)


def _build(cfg: RunConfig, run_dir: Path, start: float) -> RunSummary:
    store.remove_stale_temporaries(run_dir)
    ctx = RunContext(cfg, run_dir)
    plans = plan_models(cfg)
    evalsets = cfg.evaluation.evalsets()
    data = ctx.data
    if not (run_dir / store.RUN_JSON).is_file():
        for base in cfg.models:  # a model that cannot be built or loaded fails before the run exists
            model, _ = ctx.new_model(base)
            if base.checkpoint:
                load_state(model, Path(base.checkpoint))
        h, w, c = data.image_shape
        store.write_json(
            {
                "schema_version": store.SCHEMA_VERSION,
                "dataset": data.name,
                "num_classes": data.num_classes,
                "class_names": list(data.class_names),
                "image_shape": [h, w, c],
                "num_test": len(data.test_labels),
                "normalization": {"mean": list(ctx.norm.mean), "std": list(ctx.norm.std)},
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": cfg.raw,
                "prunable_layers": {},
                "margin": cfg.evaluation.margin,
            },
            run_dir / store.RUN_JSON,
        )
    if not (run_dir / store.IMAGES).is_file():
        write_images(run_dir, data)

    done = reused = 0
    units = [("model", p, None) for p in plans] + [("eval", p, es) for p in plans for es in evalsets]
    bar = tqdm(units, desc=f"run {cfg.name}", unit="unit", disable=None)
    stale_robustness: set[str] = set()
    for kind, plan, es in bar:
        finished = (
            _read_record(run_dir, "model", plan.model_id)
            if kind == "model"
            else _eval_record(run_dir, plan.model_id, *es)
        )
        if finished is not None:
            reused += 1
            continue
        bar.set_postfix_str(
            plan.model_id if kind == "model" else f"{plan.model_id} {store.evalset_name(*es)}", refresh=False
        )
        if kind == "model":
            run_model_unit(ctx, plan)
        else:
            if plan.model_id not in stale_robustness:
                _record_path(run_dir, "robustness", plan.model_id).unlink(missing_ok=True)
                stale_robustness.add(plan.model_id)
            run_eval_unit(ctx, plan, es[0], es[1], len(plans))
        done += 1
    bar.close()

    for plan in plans:
        if _read_record(run_dir, "robustness", plan.model_id) is None:
            write_robustness(run_dir, plan.model_id, evalsets)
            store.write_json({"evalsets": evalsets}, _record_path(run_dir, "robustness", plan.model_id))
    assemble(run_dir, plans, evalsets)
    meta = store.read_run_json(run_dir)
    layers = {}
    for p in plans:
        rec = _read_record(run_dir, "model", p.model_id) or {}
        layers.setdefault(p.base.id, rec.get("prunable_layers", []))
    if meta.get("prunable_layers") != layers:
        meta["prunable_layers"] = layers
        store.write_json(meta, run_dir / store.RUN_JSON)
    accs = {
        p.model_id: (_eval_record(run_dir, p.model_id, store.CLEAN, 0) or {}).get("accuracy", float("nan"))
        for p in plans
    }
    records = [
        {**(_read_record(run_dir, "model", p.model_id) or {}), "clean_accuracy": accs[p.model_id]} for p in plans
    ]
    notes = model_warnings(records, store.read_table(run_dir / store.EVALUATIONS).to_pylist(), data.test_labels)
    return RunSummary(
        run_dir, len(plans), len(plans) * len(evalsets), done, reused, time.perf_counter() - start, accs, notes
    )
