"""The plan of a run: its models and its units of work, each with explicit dependencies.

A unit is one piece of work that writes its own files: the gallery images, one model (train
the dense model or prune its parent), one model × evaluation set, one model's per-sample
robustness. Its dependencies are the units whose files it reads: a pruned model needs its
parent's checkpoint, an evaluation its model, robustness every evaluation of its model.
Executors (pipeline/executors.py) only schedule units in an order the dependencies allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pipeline import store
from pipeline.config import ModelConfig, PruneSpec, RunConfig
from pipeline.errors import PruneScopeError
from pipeline.pruning import PRUNERS

IMAGES, MODEL, EVAL, ROBUSTNESS = "images", "model", "eval", "robustness"


@dataclass(frozen=True)
class ModelPlan:
    """One model of the run: a dense base (`spec` None) or a pruned child of `parent_id`."""

    model_id: str
    base: ModelConfig
    spec: PruneSpec | None = None
    parent_id: str | None = None

    @property
    def loads_parent(self) -> bool:
        """Whether building this model starts from its parent's saved weights."""
        return self.spec is not None and not PRUNERS.get(self.spec.method).trains_from_scratch


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


@dataclass(frozen=True)
class Unit:
    """One unit of work; `deps` are the keys of the units that must be finished first."""

    kind: str
    model: ModelPlan | None = None
    evalset: tuple[str, int] | None = None
    deps: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A unique, stable name: `images`, `model:<id>`, `eval:<id>:<set>`, `robustness:<id>`."""
        return unit_key(self.kind, self.model.model_id if self.model else None, self.evalset)

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model else None

    @property
    def wants_gpu(self) -> bool:
        """Units that run a network (and so use a GPU when the run's device is one)."""
        return self.kind in (MODEL, EVAL)


def unit_key(kind: str, model_id: str | None = None, evalset: tuple[str, int] | None = None) -> str:
    parts = [kind] + ([model_id] if model_id else []) + ([store.evalset_name(*evalset)] if evalset else [])
    return ":".join(parts)


@dataclass(frozen=True)
class Plan:
    """The run's models, evaluation sets and units (in an order that respects dependencies)."""

    models: tuple[ModelPlan, ...]
    evalsets: tuple[tuple[str, int], ...]
    units: tuple[Unit, ...]

    def todo(self, finished: Callable[[Unit], bool]) -> list[Unit]:
        """Units to run: those not finished, and every unit depending on one that is rerun (its
        inputs change). Dependencies on finished units are dropped, so what is returned is a
        self-contained graph in dependency order."""
        rerun: set[str] = set()
        out = []
        for unit in self.units:
            if any(d in rerun for d in unit.deps) or not finished(unit):
                rerun.add(unit.key)
                out.append(Unit(unit.kind, unit.model, unit.evalset, tuple(d for d in unit.deps if d in rerun)))
        return out


def plan_run(cfg: RunConfig) -> Plan:
    """All units of the run: images, models (parents first), evaluations, robustness."""
    models = plan_models(cfg)
    evalsets = tuple(cfg.evaluation.evalsets())
    units = [Unit(IMAGES)]
    units += [Unit(MODEL, p, deps=(unit_key(MODEL, p.parent_id),) if p.loads_parent else ()) for p in models]
    units += [Unit(EVAL, p, es, (unit_key(MODEL, p.model_id),)) for p in models for es in evalsets]
    units += [Unit(ROBUSTNESS, p, deps=tuple(unit_key(EVAL, p.model_id, es) for es in evalsets)) for p in models]
    return Plan(tuple(models), evalsets, tuple(units))
