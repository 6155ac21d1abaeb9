"""The plan of a run: its models and its units of work, each with explicit dependencies.

A unit is one piece of work that writes its own files: the gallery images, one model (train
the dense model or prune its parent), one model × evaluation sets (the clean set alone, the
corrupted sets in groups of about `[evaluation] unit_rows` sample rows: a unit per set would
cost more in overhead than in evaluation for small test sets), one model's per-sample
robustness. Its dependencies are the units whose files it reads: a pruned model needs its
parent's checkpoint, an evaluation its model, robustness every evaluation of its model. With
`[attribution]`, one unit chooses the samples to map from every model's clean evaluation, and one
unit per model maps them; it needs its parent's maps (its drift is measured against them).
Executors (pipeline/executors.py) only schedule units in an order the dependencies allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from pipeline import store
from pipeline.config import ModelConfig, PruneSpec, RunConfig, replica_id
from pipeline.errors import PruneScopeError
from pipeline.pruning import PRUNERS, default_exclusions
from pipeline.store.populations import layer_of

IMAGES, MODEL, EVAL, ROBUSTNESS = "images", "model", "eval", "robustness"
ATTRIBUTION_SAMPLES, ATTRIBUTION = "attribution_samples", "attribution"


@dataclass(frozen=True)
class ModelPlan:
    """One model of the run: a dense base (`spec` None) or a pruned child of `parent_id`;
    `replicate` is its seed of the config's `seeds`, `population` the id its replicates share."""

    model_id: str
    base: ModelConfig
    spec: PruneSpec | None = None
    parent_id: str | None = None
    replicate: int = 0
    population: str = ""
    clean_only: bool = False  # evaluated on the clean set only: see `plan_models`

    def __post_init__(self) -> None:
        if not self.population:
            object.__setattr__(self, "population", self.model_id)

    @property
    def loads_parent(self) -> bool:
        """Whether building this model starts from its parent's saved weights."""
        return self.spec is not None and not PRUNERS.get(self.spec.method).trains_from_scratch


def plan_models(cfg: RunConfig, layers: Mapping[str, Sequence[str]] | None = None) -> list[ModelPlan]:
    """Every model of the run, parents before children; models pruned elsewhere last.

    `layers` (the prunable layer names of each dense [[models]] id, pipeline.units.layer_names)
    expands [[sensitivity]] and checks `layer:<name>` scopes; a run with either needs it.
    Sensitivity models (unless they ask for corruptions) and, with `[evaluation] replicas = "clean"`,
    the models of seeds other than 0 are evaluated on the clean set only."""
    replicas_clean = cfg.evaluation.replicas == "clean"
    plans = []
    dense = {base.id: replica_id(base.model_id, base.seeds[0]) for base in cfg.models if base.parent is None}
    for base in cfg.models:
        if base.parent is None:
            specs = list(cfg.prune) + _sensitivity_specs(cfg, base, layers)
            for seed in base.seeds:
                clean = replicas_clean and seed != 0
                plans.append(ModelPlan(replica_id(base.model_id, seed), base, None, None, seed, base.model_id, clean))
            for spec in specs:
                _check_layer(spec, base, layers)
                population = store.check_id(spec.model_id(base.id))
                for seed in spec.seeds or base.seeds[:1]:
                    parent = replica_id(base.model_id, seed)
                    mid = store.check_id(replica_id(population, seed))
                    clean = spec.clean_only or (replicas_clean and seed != 0)
                    plans.append(ModelPlan(mid, base, spec, parent, seed, population, clean))
    plans += [
        ModelPlan(base.model_id, base, None, dense[base.parent]) for base in cfg.models if base.parent is not None
    ]
    ids = [p.model_id for p in plans]
    if len(set(ids)) != len(ids):
        raise PruneScopeError("two [[prune]] entries describe the same model", "remove the repeated combination")
    return plans


def _needs_layers(base: ModelConfig, layers: Mapping[str, Sequence[str]] | None) -> Sequence[str]:
    if layers is None or base.id not in layers:
        raise ValueError("plan_models needs the prunable layers for [[sensitivity]] and layer:<name> scopes")
    return layers[base.id]


def _sensitivity_specs(
    cfg: RunConfig, base: ModelConfig, layers: Mapping[str, Sequence[str]] | None
) -> list[PruneSpec]:
    """The [[sensitivity]] models of one dense model: each prunable layer the method may prune, alone."""
    out = []
    for sens in cfg.sensitivity:
        names = list(_needs_layers(base, layers))
        skip = set(default_exclusions(names, PRUNERS.get(sens.method)))
        out += sens.specs([n for n in names if n not in skip])
    return out


def _check_layer(spec: PruneSpec, base: ModelConfig, layers: Mapping[str, Sequence[str]] | None) -> None:
    """A `layer:<name>` scope must name a prunable layer of the model."""
    name = layer_of(spec.scope)
    if name is None:
        return
    names = _needs_layers(base, layers)
    if name not in names:
        raise PruneScopeError(
            f"scope {spec.scope!r}: {base.id!r} has no prunable layer {name!r}",
            f"use one of: {', '.join(f'layer:{n}' for n in names)}",
        )


@dataclass(frozen=True)
class Unit:
    """One unit of work; `deps` are the keys of the units that must be finished first."""

    kind: str
    model: ModelPlan | None = None
    evalsets: tuple[tuple[str, int], ...] = ()
    deps: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A unique, stable name: `images`, `model:<id>`, `eval:<id>:<set>` (`eval:<id>:<first>..<last>`
        for several sets), `robustness:<id>`."""
        return unit_key(self.kind, self.model.model_id if self.model else None, self.evalsets)

    @property
    def model_id(self) -> str | None:
        return self.model.model_id if self.model else None

    @property
    def wants_gpu(self) -> bool:
        """Units that run a network (and so use a GPU when the run's device is one)."""
        return self.kind in (MODEL, EVAL, ATTRIBUTION)


def unit_key(kind: str, model_id: str | None = None, evalsets: Sequence[tuple[str, int]] = ()) -> str:
    parts = [kind] + ([model_id] if model_id else [])
    if evalsets:
        names = [store.evalset_name(*es) for es in evalsets]
        parts.append(names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}")
    return ":".join(parts)


def eval_groups(
    sets: Sequence[tuple[str, int]], num_test: int | None, unit_rows: int
) -> list[tuple[tuple[str, int], ...]]:
    """The evaluation units of one model: the clean set alone (what attribution waits for), the
    corrupted sets in consecutive groups of about `unit_rows` rows (at least one set each, sizes
    even; one set a unit when the test set's size `num_test` is not known)."""
    clean = [es for es in sets if es[0] == store.CLEAN]
    corrupted = [es for es in sets if es[0] != store.CLEAN]
    groups = [tuple(clean)] if clean else []
    if not corrupted:
        return groups
    count = len(corrupted) if not num_test else min(len(corrupted), math.ceil(len(corrupted) * num_test / unit_rows))
    size = math.ceil(len(corrupted) / count)
    return groups + [tuple(corrupted[lo : lo + size]) for lo in range(0, len(corrupted), size)]


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
                out.append(Unit(unit.kind, unit.model, unit.evalsets, tuple(d for d in unit.deps if d in rerun)))
        return out


def model_evalsets(plan: ModelPlan, evalsets: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The evaluation sets of one model: the run's, or the clean set alone (`clean_only`)."""
    return [es for es in evalsets if not plan.clean_only or es[0] == store.CLEAN]


def plan_run(cfg: RunConfig, layers: Mapping[str, Sequence[str]] | None = None, num_test: int | None = None) -> Plan:
    """All units of the run: images, models (parents first), evaluations, robustness, attribution.
    `num_test` (the test set's size) sizes the evaluation units (`eval_groups`)."""
    models = plan_models(cfg, layers)
    evalsets = tuple(cfg.evaluation.evalsets())
    units = [Unit(IMAGES)]
    units += [Unit(MODEL, p, deps=(unit_key(MODEL, p.parent_id),) if p.loads_parent else ()) for p in models]
    evals = {
        p.model_id: [
            Unit(EVAL, p, group, (unit_key(MODEL, p.model_id),))
            for group in eval_groups(model_evalsets(p, evalsets), num_test, cfg.evaluation.unit_rows)
        ]
        for p in models
    }
    units += [u for p in models for u in evals[p.model_id]]
    units += [Unit(ROBUSTNESS, p, deps=tuple(u.key for u in evals[p.model_id])) for p in models]
    if cfg.attribution.enabled:
        clean = (evalsets[0],)
        units.append(Unit(ATTRIBUTION_SAMPLES, deps=tuple(unit_key(EVAL, p.model_id, clean) for p in models)))
        for p in models:  # parents come first in `models`, so their maps are planned before their children's
            deps = (unit_key(ATTRIBUTION_SAMPLES), unit_key(MODEL, p.model_id))
            units.append(
                Unit(ATTRIBUTION, p, deps=deps + ((unit_key(ATTRIBUTION, p.parent_id),) if p.parent_id else ()))
            )
    return Plan(tuple(models), evalsets, tuple(units))
