"""Build or resume a run: plan its units (pipeline/plan.py), skip the finished ones, hand the
rest to an executor (pipeline/executors.py), then assemble the contract tables from the units'
records.

Only one process builds a run at a time: a lock beside the run folder (in the store's
`.locks/`, so `--force` never deletes it) is taken before anything in the folder is touched.
A killed run, started again, redoes only the units without a record (and those depending on them).
"""

from __future__ import annotations

import base64
import functools
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from pipeline import store
from pipeline.attribution import last_conv
from pipeline.checks import check_store_dir, model_warnings
from pipeline.config import RunConfig
from pipeline.errors import PruneScopeError
from pipeline.executors import EXECUTORS, Executor
from pipeline.models import load_state
from pipeline.plan import ModelPlan, Unit, model_evalsets, plan_run
from pipeline.store.schema import EVALUATION_SUMMARY
from pipeline.units import context, eval_output_path, eval_record, execute, file_lock, finished, read_record

LOCKS_DIR = ".locks"  # in the store folder: one lock file per run name, never deleted


def record_bits(run_dir: Path, plan: ModelPlan, corruption: str, severity: int) -> bytes | None:
    """An evaluation's bitset from its samples file, for units recorded before records had one."""
    rows = store.read_table(eval_output_path(run_dir, plan.model_id, corruption, severity), ["sample_id", "correct"])
    return store.pack_correct(rows.column("sample_id").to_numpy(), rows.column("correct").to_numpy())


def record_preds(run_dir: Path, model_id: str, ev: dict) -> np.ndarray | None:
    """An evaluation's stored predictions (clean sets only): from its record, or from its samples
    file for units recorded before records had them."""
    c, s = ev["corruption"], ev["severity"]
    if not store.stores_preds(c):
        return None
    if ev.get("preds"):
        return np.frombuffer(base64.b64decode(ev["preds"]), "<i2").astype(np.int16)
    rows = store.read_table(eval_output_path(run_dir, model_id, c, s), ["sample_id", "pred"])
    return store.pack_preds(rows.column("sample_id").to_numpy(), rows.column("pred").to_numpy())


def assemble(run_dir: Path, plans: list[ModelPlan], evalsets: list[tuple[str, int]]) -> None:
    """Write models, evaluations and heads tables from the unit records."""
    models, evals, heads = [], [], []
    for plan in plans:
        rec = read_record(run_dir, "model", plan.model_id)
        assert rec is not None, plan.model_id
        for c, s in model_evalsets(plan, evalsets):
            ev = eval_record(run_dir, plan.model_id, c, s)
            assert ev is not None, (plan.model_id, c, s)
            bits = ev.get("correct_bits")  # base64 in the unit's JSON record
            bits = base64.b64decode(bits) if bits else record_bits(run_dir, plan, c, s)
            evals.append({**ev, "correct_bits": bits, "preds": record_preds(run_dir, plan.model_id, ev)})
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
    elif run_dir.exists() and any(not p.name.startswith(".") for p in run_dir.iterdir()):
        raise PruneScopeError(
            f"{run_dir} exists and is not a PruneScope run", "choose another run `name` or another --store"
        )


def lock_path(store_dir: Path, name: str) -> Path:
    """The lock file of run `name`: outside the run folder, so `--force` cannot remove it."""
    return Path(store_dir) / LOCKS_DIR / f"{name}.lock"


@contextmanager
def run_lock(store_dir: Path, name: str) -> Iterator[None]:
    """Hold the run's lock, or fail at once when another process is building it."""
    with file_lock(lock_path(store_dir, name), wait=False) as held:
        if not held:
            raise PruneScopeError(
                f"run {name} in {store_dir} is being built by another process",
                "wait for it to finish, or stop it (what it finished is kept)",
            )
        yield


class _Bar:
    """The CLI's progress bar: one tick per finished unit, the unit in progress as postfix."""

    def __init__(self, name: str, total: int, reused: int) -> None:
        self.bar = tqdm(total=total + reused, initial=reused, desc=f"run {name}", unit="unit", disable=None)

    def started(self, unit: Unit) -> None:
        self.bar.set_postfix_str(unit.key, refresh=False)

    def finished(self, unit: Unit) -> None:
        self.bar.set_postfix_str(unit.key, refresh=False)
        self.bar.update()


def make_executor(cfg: RunConfig) -> Executor:
    """The registered executor that `cfg.execution` names."""
    return EXECUTORS.get(cfg.execution.executor).from_config(cfg.execution, cfg.device)


def build_run(cfg: RunConfig, store_dir: Path, force: bool = False, force_option: str = "--force") -> RunSummary:
    """Build (or resume) the run described by `cfg` in `store_dir/<name>` with the executor its
    [execution] table names (serial by default).

    `force` replaces an existing run; `force_option` is how the caller spells it in hints.
    """
    start = time.perf_counter()
    store_dir = check_store_dir(Path(store_dir))
    run_dir = store_dir / cfg.name
    with run_lock(store_dir, cfg.name):
        _prepare_run_dir(cfg, run_dir, force, force_option)
        return _build(cfg, run_dir, make_executor(cfg), start)


def _build(cfg: RunConfig, run_dir: Path, executor: Executor, start: float) -> RunSummary:
    run_dir.mkdir(parents=True, exist_ok=True)
    store.remove_stale_temporaries(run_dir)
    ctx = context(cfg, run_dir)
    plan = plan_run(cfg, ctx.layer_names, len(ctx.data.test_labels))
    if not (run_dir / store.RUN_JSON).is_file():
        _write_run_json(cfg, run_dir)
    todo = plan.todo(lambda unit: finished(run_dir, unit))
    reused = len(plan.units) - len(todo)
    bar = _Bar(cfg.name, len(todo), reused)
    try:
        threads = cfg.execution.threads or torch.get_num_threads()
        executor.run(todo, functools.partial(execute, cfg, run_dir, threads), bar)
    finally:
        bar.bar.close()

    models, evalsets = list(plan.models), list(plan.evalsets)
    assemble(run_dir, models, evalsets)
    meta = store.read_run_json(run_dir)
    layers = {}
    for p in models:
        rec = read_record(run_dir, "model", p.model_id) or {}
        layers.setdefault(p.base.id, rec.get("prunable_layers", []))
    if meta.get("prunable_layers") != layers:
        meta["prunable_layers"] = layers
        store.write_json(meta, run_dir / store.RUN_JSON)
    accs = {
        p.model_id: (eval_record(run_dir, p.model_id, store.CLEAN, 0) or {}).get("accuracy", float("nan"))
        for p in models
    }
    records = [
        {**(read_record(run_dir, "model", p.model_id) or {}), "clean_accuracy": accs[p.model_id]} for p in models
    ]
    labels = context(cfg, run_dir).data.test_labels
    evals = store.read_table(run_dir / store.EVALUATIONS, EVALUATION_SUMMARY).to_pylist()
    notes = model_warnings(records, evals, labels)
    evaluations = sum(len(model_evalsets(p, evalsets)) for p in models)
    return RunSummary(run_dir, len(models), evaluations, len(todo), reused, time.perf_counter() - start, accs, notes)


def _write_run_json(cfg: RunConfig, run_dir: Path) -> None:
    """The run's metadata (data set, classes, normalisation, config), computed in this process
    (CPU only: the data set is read here, no unit runs here)."""
    ctx = context(cfg, run_dir)
    data = ctx.data
    for base in cfg.models:  # a model that cannot be built or loaded fails before the run exists
        model, _ = ctx.new_model(base)
        if base.checkpoint:
            load_state(model, Path(base.checkpoint))
        if "gradcam" in cfg.attribution.methods:
            last_conv(model, f"model {base.id!r}")
    h, w, c = data.image_shape
    at = cfg.attribution
    attribution = {
        "shape": [h, w],
        "methods": list(at.methods),
        "target": "label",
        "baseline": "black",
        "settings": {k: getattr(at, k) for k in ("window", "stride", "n_steps", "per_class", "top_flips")},
    }
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
            "config": cfg.study,
            "prunable_layers": {},
            "margin": cfg.evaluation.margin,
            "angles": cfg.evaluation.angles_stored(data.num_classes),
            **({"attribution": attribution} if at.enabled else {}),
        },
        run_dir / store.RUN_JSON,
    )
