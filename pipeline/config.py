"""Run configuration: TOML (stdlib tomllib) parsed into validated dataclasses.

Unknown keys and unknown names (data set, architecture, pruning method, scope, schedule)
are errors that list what is known. `[[prune]]` tables are grids: any key given as a list
is expanded, so one table can describe a whole sweep.
"""

from __future__ import annotations

import copy
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from pipeline.errors import PruneScopeError
from pipeline.store import (
    ANGLES_ALL,
    ANGLES_CLEAN,
    ANGLES_FULL_MAX_CLASSES,
    ANGLES_NEAREST_K,
    CLEAN,
    MARGIN_DEFINITIONS,
    MARGIN_EQ5,
    check_id,
)
from pipeline.store.populations import LAYER_SCOPE, layer_of

SCHEDULES = ("oneshot", "iterative")
LR_SCHEDULES = ("cosine", "step", "exponential", "constant")
AUGMENTS = ("none", "crop", "crop_flip")
FEATURE_MODES = ("auto", "all", "clean", "none")
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = (
    "serial",
    "processes",
    "dask",
)  # pipeline.executors.EXECUTORS's names (that module needs torch; a test holds them equal)
REPLICA_SETS = ("all", "clean")  # [evaluation] replicas: where the models of seeds other than 0 are evaluated


NORMALIZATIONS = ("train", "none")
UNIT_ROWS = 100_000  # [evaluation] unit_rows: sample rows per evaluation unit (whole corrupted sets)


@dataclass(frozen=True)
class DatasetConfig:
    """The data set, and how images become model inputs.

    `normalization`: "train" (per-channel mean and std of the training images, the
    default), "none" (x/255 only), or explicit `{mean = [...], std = [...]}`, for a model
    trained elsewhere with other statistics.
    """

    name: str
    root: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    normalization: str | dict[str, tuple[float, ...]] = "train"


@dataclass(frozen=True)
class ModelConfig:
    """One model of `[[models]]`: a registered `arch`, a user `import` or a `factory`
    (the Python API), trained here or loaded from a `checkpoint`.

    With `parent` (the id of another entry) it is a model pruned elsewhere: it is evaluated
    and its sparsity measured, under the method name `method`, but not pruned again.
    `model_id` is its id in the store: the `id` the user gave, kept as written, or
    `<arch>-dense` for a dense entry without one (`<arch>` for one pruned elsewhere).
    `import_dir` (the config's folder) is searched first for the module of `import`.
    `reported_accuracy` is the clean accuracy the model reached where it was trained.
    `seeds` (`seeds = [0, 1, 2]`): the dense model is trained once per seed (a population, for PIE).
    """

    id: str
    arch: str | None = None
    import_spec: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    parent: str | None = None
    method: str = "external"
    factory: Callable[..., Any] | None = field(default=None, compare=False)
    model_id: str = ""
    import_dir: str | None = None
    reported_accuracy: float | None = None
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not self.model_id:
            object.__setattr__(self, "model_id", self.id)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    augment: str = "none"


@dataclass(frozen=True)
class FinetuneConfig:
    """SGD with ExponentialLR, the recipe of seeds/001."""

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    gamma: float = 0.9
    batch_size: int = 64


@dataclass(frozen=True)
class MptConfig:
    """Score training for multi-prize tickets: the published CIFAR recipe (SGD, cosine)."""

    epochs: int = 20
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64


@dataclass(frozen=True)
class PruneSpec:
    method: str
    sparsity: float
    scope: str = "global"
    schedule: str = "oneshot"
    steps: int = 1
    finetune_epochs: int = 0
    exclude: tuple[str, ...] = ()
    taylor_batches: int = 8
    init: str = "kaiming_normal"
    last_layer_dense: bool = False
    seeds: tuple[int, ...] = ()
    clean_only: bool = False

    def model_id(self, parent: str) -> str:
        """Readable, unique id: parent, method, scope, schedule, sparsity %, fine-tune epochs
        (the id of the population: `replica_id` adds the seed)."""
        sched = self.schedule if self.schedule == "oneshot" else f"iter{self.steps}"
        extra = ""
        if self.method == "mpt":
            extra = ("-sc" if self.init == "signed_constant" else "") + ("-lld" if self.last_layer_dense else "")
        scope = self.scope.replace(":", "-")
        return f"{parent}-{self.method}-{scope}-{sched}-s{self.sparsity * 100:g}-ft{self.finetune_epochs}{extra}"


def replica_id(population: str, seed: int) -> str:
    """The id of a population's model of `seed`: seed 0 keeps the population's id (the model a
    config without `seeds` builds), other seeds add `-seed<s>`."""
    return population if seed == 0 else f"{population}-seed{seed}"


@dataclass(frozen=True)
class SensitivitySpec:
    """`[[sensitivity]]`: prune each prunable layer alone with `method` at each sparsity.

    Its models are `PruneSpec`s of scope `layer:<name>` (expanded once the layers are known,
    pipeline.plan); `corruptions` evaluates them on the corrupted sets too (default: clean only).
    """

    method: str = "magnitude"
    sparsities: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    corruptions: bool = False

    def specs(self, layers: list[str]) -> list[PruneSpec]:
        """One one-shot spec per layer and sparsity."""
        return [
            PruneSpec(self.method, s, f"{LAYER_SCOPE}{name}", seeds=self.seeds, clean_only=not self.corruptions)
            for name in layers
            for s in self.sparsities
        ]


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation sets (clean plus corruption × severity) and how to evaluate them.

    `corrupted_root` names a folder of official CIFAR-10-C files to read instead of
    generating; `frost_dir` a folder of frost photos for the frost corruption. `margin`
    is the definition the samples' margin column holds: "eq5" (the paper's) or "signed".
    `replicas`: the sets the models of seeds other than 0 are evaluated on, "all" or "clean"
    (what PIE compare; it keeps populations cheap). Above `full_angles_max_classes` classes the
    corrupted rows keep the angles of their `nearest_k` nearest classes only (docs/store.md).
    `unit_rows`: the corrupted sets of a model are evaluated in units of about this many sample
    rows (whole sets), so that small test sets do not pay a unit's overhead per set.
    """

    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    batch_size: int = 512
    features: str = "auto"
    corrupted_root: str | None = None
    frost_dir: str | None = None
    margin: str = MARGIN_EQ5
    replicas: str = "all"
    full_angles_max_classes: int = ANGLES_FULL_MAX_CLASSES
    nearest_k: int = ANGLES_NEAREST_K
    unit_rows: int = UNIT_ROWS

    def angles_stored(self, num_classes: int) -> dict[str, Any]:
        """run.json "angles" for a run of `num_classes` classes: every angle on every row up to
        `full_angles_max_classes`, else every angle on clean rows and the k nearest on corrupted rows."""
        if num_classes <= self.full_angles_max_classes:
            return {"full": ANGLES_ALL}
        return {
            "full": ANGLES_CLEAN,
            "k": min(self.nearest_k, num_classes),
            "max_classes": self.full_angles_max_classes,
        }

    def evalsets(self) -> list[tuple[str, int]]:
        """(corruption, severity) pairs, clean first."""
        return [(CLEAN, 0)] + [(c, s) for c in self.corruptions for s in self.severities]


@dataclass(frozen=True)
class AttributionConfig:
    """Attribution maps (Captum) of a set of samples chosen once per run, for every model.

    The samples: the `top_flips` whose prediction changes most between the pruned models and
    their parents, plus the first `per_class` of every class. Occlusion slides a black `window`²
    patch with `stride` (`perturbations_per_eval` patches per forward pass); integrated gradients
    go from a black image in `n_steps` (`internal_batch_size` per pass); Grad-CAM uses the last
    convolutional layer. `corrupted` adds the maps on every corrupted evaluation set of the run.
    """

    methods: tuple[str, ...] = ()
    window: int = 4
    stride: int = 2
    perturbations_per_eval: int = 64
    n_steps: int = 32
    internal_batch_size: int = 256
    per_class: int = 2
    top_flips: int = 16
    corrupted: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.methods)


@dataclass(frozen=True)
class ExecutionConfig:
    """How a run is executed (not part of what it computes, so not of its fingerprint).

    `workers` starts a local Dask cluster of that many worker processes; `scheduler` is the
    address of an existing one; `threads` the torch CPU threads of every unit (default: this
    process's), which CPU float results depend on: runs with equal `threads` are equal bit for bit.
    """

    executor: str = "serial"
    workers: int | None = None
    scheduler: str | None = None
    threads: int | None = None


def execution_config(
    executor: str | None = None, workers: int | None = None, scheduler: str | None = None, threads: int | None = None
) -> ExecutionConfig:
    """Checked execution settings; `workers` or `scheduler` alone imply the dask executor."""
    if executor is None:
        executor = "dask" if workers is not None or scheduler is not None else "serial"
    _choice(executor, EXECUTORS, "executor")
    for key, value in (("workers", workers), ("threads", threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise PruneScopeError(f"[execution] {key} = {value!r} must be a positive integer", f"e.g. {key} = 2")
    if executor == "serial" and (workers is not None or scheduler is not None):
        raise PruneScopeError(
            "workers and scheduler apply to the dask and processes executors only",
            'use executor = "processes" (local worker processes) or "dask" (--executor dask)',
        )
    if executor == "processes" and scheduler is not None:
        raise PruneScopeError(
            "scheduler applies to the dask executor only (processes runs on this machine)",
            'use executor = "dask" to run on a Dask cluster',
        )
    if workers is not None and scheduler is not None:
        raise PruneScopeError(
            "give either workers (start a local Dask cluster) or scheduler (use a running one), not both",
            "drop one of them",
        )
    return ExecutionConfig(executor, workers, scheduler, threads)


@dataclass(frozen=True)
class RunConfig:
    name: str
    seed: int
    device: str
    dataset: DatasetConfig
    models: tuple[ModelConfig, ...]
    train: TrainConfig
    finetune: FinetuneConfig
    mpt: MptConfig
    prune: tuple[PruneSpec, ...]
    evaluation: EvalConfig
    raw: dict[str, Any]
    base_dir: Path
    execution: ExecutionConfig = ExecutionConfig()
    sensitivity: tuple[SensitivitySpec, ...] = ()
    attribution: AttributionConfig = AttributionConfig()

    @property
    def study(self) -> dict[str, Any]:
        """The config as written without [execution]: what the run computes (stored in run.json)."""
        return {k: v for k, v in self.raw.items() if k != "execution"}

    def fingerprint(self) -> str:
        """Canonical JSON of the study: a run is resumed only with the same one, by any executor."""
        return json.dumps(self.study, sort_keys=True, default=str)


class UnknownKeyError(PruneScopeError):
    """Keys a config table does not have (`keys`, in `section`): lets `--set` name its own key."""

    def __init__(self, keys: list[str], section: str, known: list[str]) -> None:
        self.keys, self.section, self.known = keys, section, known
        super().__init__(f"unknown key(s) {keys} in {section}", f"known keys: {', '.join(known)}")

    def __reduce__(self) -> tuple:
        return type(self), (self.keys, self.section, self.known)


def _take(table: dict[str, Any], section: str, allowed: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise UnknownKeyError(unknown, section, sorted(allowed))
    for key, value in table.items():
        types = allowed[key]
        if isinstance(value, bool) and not {bool, object} & set(types if isinstance(types, tuple) else (types,)):
            raise PruneScopeError(f"{section}.{key} = {value!r} has the wrong type", f"expected {types}")
        if not isinstance(value, types):
            raise PruneScopeError(
                f"{section}.{key} = {value!r} has the wrong type", f"expected {getattr(types, '__name__', types)}"
            )
    return dict(table)


def _require(ok: bool, where: str, value: Any, rule: str, example: str) -> None:
    """Raise the error `<where> = <value> <rule>` with an example as the fix unless `ok`."""
    if not ok:
        raise PruneScopeError(f"{where} = {value!r} {rule}", example)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Range rules of the numeric settings in [train], [finetune], [mpt] and [evaluation]: a value
# outside them would train on nothing, diverge or crash later, so they are refused up front.
NUMBER_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "epochs": (lambda v: v >= 0, "must be 0 or more", "e.g. epochs = 10"),
    "batch_size": (lambda v: v >= 1, "must be at least 1", "e.g. batch_size = 64"),
    "lr": (lambda v: v > 0, "must be positive", "e.g. lr = 0.05"),
    "momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)", "e.g. momentum = 0.9"),
    "weight_decay": (lambda v: v >= 0, "must be 0 or more", "e.g. weight_decay = 5e-4"),
    "gamma": (lambda v: 0 < v <= 1, "must be in (0, 1]", "e.g. gamma = 0.9"),
}


def _check_numbers(table: dict[str, Any], section: str) -> None:
    for key, value in table.items():
        if key in NUMBER_RULES:
            ok, rule, example = NUMBER_RULES[key]
            _require(ok(value), f"{section}.{key}", value, rule, example)


def _normalization(value: Any) -> str | dict[str, tuple[float, ...]]:
    """`[dataset] normalization`: "train", "none" or {mean = [...], std = [...]} (one value per channel)."""
    example = 'use "train", "none" or { mean = [0.5], std = [0.5] } (one number per image channel)'
    if isinstance(value, str):
        _choice(value, NORMALIZATIONS, "normalization")
        return value
    ok = isinstance(value, dict) and set(value) == {"mean", "std"}
    _require(ok, "[dataset] normalization", value, "is not a normalization", example)
    stats = {}
    for key in ("mean", "std"):
        v = value[key]
        ok = isinstance(v, list) and bool(v) and all(_is_number(x) for x in v)
        _require(ok, f"[dataset] normalization.{key}", v, "must be a list of numbers", example)
        stats[key] = tuple(float(x) for x in v)
    _require(len(stats["mean"]) == len(stats["std"]), "[dataset] normalization", value, "has unequal lengths", example)
    _require(all(x > 0 for x in stats["std"]), "[dataset] normalization.std", value["std"], "must be positive", example)
    return stats


def _resolve(path: str, base_dir: Path) -> str:
    """A path from the config: absolute, or relative to the config file's folder."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base_dir / p)


def _check_method_keys(axes: dict[str, list], i: int) -> None:
    """A key that only some methods read (their `config_keys`) needs one of them in its [[prune]] entry."""
    from pipeline.pruning import PRUNERS

    methods = axes["method"]
    if not all(isinstance(m, str) and m in PRUNERS for m in methods):
        return  # the method check names the unknown method
    readers: dict[str, list[str]] = {}
    for name in PRUNERS:
        for key in PRUNERS.get(name).config_keys:
            readers.setdefault(key, []).append(name)
    for key, names in readers.items():
        if key in axes and not set(names) & set(methods):
            raise PruneScopeError(
                f"[[prune]] #{i + 1} sets `{key}`, which only {', '.join(names)} reads",
                f"move `{key}` to a [[prune]] entry with method = {names[0]!r}, or remove it",
            )


def _choice(value: str, known: tuple[str, ...] | list[str], what: str) -> str:
    if value not in known:
        raise PruneScopeError(f"unknown {what} {value!r}", f"use one of: {', '.join(known)}")
    return value


PATH_KEYS = ("root", "checkpoint", "corrupted_root", "frost_dir")


def _override_value(text: str, where: str) -> Any:
    """The value of `--set KEY=VALUE` as TOML reads it; a bare word (no quotes or brackets) is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if text and not any(c in text for c in "[]{}\"'=") and text.strip() == text:
            return text
        raise PruneScopeError(
            f"--set {where}: {text!r} is not a TOML value ({exc})",
            'write it as in the config file: 3, 0.5, true, "text", [1, 2], { width = 0.5 }',
        ) from None


def _set_path(node: Any, parts: list[str], value: Any, where: str, done: str = "") -> None:
    """Set `value` at the dotted path `parts` under `node`, creating missing tables.

    In an array of tables (`[[models]]`, `[[prune]]`) a number picks one entry (1-based, as
    error messages count them); any other key is set in every entry.
    """
    head, rest = parts[0], parts[1:]
    here = f"{done}.{head}" if done else head
    if isinstance(node, list):
        if head.isdigit():
            i = int(head)
            if not 1 <= i <= len(node) or not isinstance(node[i - 1], dict):
                raise PruneScopeError(
                    f"--set {where}: [[{done}]] has no entry #{head}",
                    f"entries are numbered 1 to {len(node)}" if node else f"the config has no [[{done}]] entries",
                )
            if not rest:
                raise PruneScopeError(f"--set {where}: name a key of entry #{head}", f"e.g. --set {here}.KEY=VALUE")
            _set_path(node[i - 1], rest, value, where, here)
            return
        if not node:
            raise PruneScopeError(f"--set {where}: the config has no [[{done}]] entries", "add one to the config file")
        for entry in node:
            _set_path(entry, parts, value, where, done)
        return
    if not isinstance(node, dict):
        raise PruneScopeError(f"--set {where}: {done} is a value, not a table", f"set {done} itself: --set {done}=...")
    if not rest:
        node[head] = value
        return
    if head not in node:
        node[head] = {}
    _set_path(node[head], rest, value, where, here)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the parsed TOML with every `KEY=VALUE` of `--set` applied in order.

    KEY is dotted (`train.epochs`, `dataset.train_limit`, `prune.2.sparsity`); VALUE is a TOML
    value. Keys are checked by `parse_config` like the file's own, so an unknown one is refused.
    A relative path (`root`, `checkpoint`, `corrupted_root`, `frost_dir`) given here is relative
    to the working directory, as any command-line path, not to the config's folder.
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or not all(parts):
            raise PruneScopeError(f"--set {item!r} is not KEY=VALUE", "e.g. --set train.epochs=1")
        if parts[0].isdigit():
            raise PruneScopeError(f"--set {key}: a key starts with a name", "e.g. --set prune.1.sparsity=[0.5]")
        value = _override_value(text.strip(), key)
        if parts[-1] in PATH_KEYS and isinstance(value, str):
            value = str(Path(value).expanduser().resolve())
        _set_path(out, parts, value, key)
    return out


def load_config(path: str | Path, corrupted_root: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read and validate a TOML run configuration (`corrupted_root` overrides [evaluation];
    `overrides` are `--set KEY=VALUE` items, see `apply_overrides`)."""
    path = Path(path)
    if not path.is_file():
        raise PruneScopeError(
            f"config file {path} does not exist", "give the path of a TOML file, e.g. configs/demo.toml"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PruneScopeError(
            f"{path} is not valid TOML: {exc}", "fix the syntax (see configs/demo.toml for an example)"
        ) from None
    raw = apply_overrides(raw, overrides)
    if corrupted_root is not None:
        raw.setdefault("evaluation", {})["corrupted_root"] = str(Path(corrupted_root).expanduser().resolve())
    try:
        return parse_config(raw, path.parent)
    except UnknownKeyError as exc:
        for item in overrides:
            key = item.partition("=")[0].strip()
            bad = [p for p in key.split(".") if p in exc.keys]
            if bad:
                raise PruneScopeError(f"--set {key}: {exc.section} has no key {bad[0]!r}", exc.fix) from None
        raise


def parse_config(raw: dict[str, Any], base_dir: Path = Path(".")) -> RunConfig:
    """Validate a config given as a dict (the parsed TOML)."""
    from pipeline.corruptions import CORRUPTIONS
    from pipeline.datasets import DATASETS, check_options
    from pipeline.models import ARCHS, check_arch_kwargs
    from pipeline.pruning import PRUNERS

    top = _take(
        raw,
        "the config",
        {
            "name": str,
            "seed": int,
            "device": str,
            "dataset": dict,
            "models": list,
            "train": dict,
            "finetune": dict,
            "mpt": dict,
            "prune": list,
            "evaluation": dict,
            "execution": dict,
            "sensitivity": list,
            "attribution": dict,
        },
    )
    if "name" not in top:
        raise PruneScopeError("the config has no `name`", 'add name = "my-run" (the run folder in the store)')
    name = check_id(top["name"], "run name")

    ds = _take(
        top.get("dataset", {}),
        "[dataset]",
        {
            "name": str,
            "root": str,
            "train_limit": int,
            "test_limit": int,
            "options": dict,
            "normalization": (str, dict),
        },
    )
    if "name" not in ds:
        raise PruneScopeError("[dataset] has no `name`", f"use one of: {', '.join(DATASETS.names())}")
    _choice(ds["name"], DATASETS.names(), "dataset")
    for key in ("train_limit", "test_limit"):
        if key in ds:
            _require(
                ds[key] >= 1,
                f"[dataset] {key}",
                ds[key],
                "must be at least 1",
                f"keep the first N samples: {key} = 500",
            )
    check_options(ds["name"], ds.get("options", {}))
    root = _resolve(ds["root"], base_dir) if "root" in ds else None
    dataset = DatasetConfig(
        ds["name"],
        root,
        ds.get("train_limit"),
        ds.get("test_limit"),
        ds.get("options", {}),
        _normalization(ds.get("normalization", "train")),
    )

    models = []
    if not top.get("models"):
        raise PruneScopeError(
            "the config has no [[models]]", 'add a [[models]] table with arch = "..." (see configs/demo.toml)'
        )
    for i, entry in enumerate(top["models"]):
        m = _take(
            entry,
            f"[[models]] #{i + 1}",
            {
                "id": str,
                "arch": str,
                "import": str,
                "kwargs": dict,
                "checkpoint": str,
                "parent": str,
                "method": str,
                "reported_accuracy": (int, float),
                "seeds": list,
            },
        )
        if ("arch" in m) == ("import" in m):
            raise PruneScopeError(
                f"[[models]] #{i + 1} needs exactly one of `arch` and `import`",
                f'architectures: {", ".join(ARCHS.names())}; or import = "mymodule:make_net" for your own',
            )
        if "arch" in m:
            _choice(m["arch"], ARCHS.names(), "architecture")
            check_arch_kwargs(m["arch"], m.get("kwargs", {}))
        ckpt = _resolve(m["checkpoint"], base_dir) if "checkpoint" in m else None
        model_id = check_id(m.get("id", m.get("arch") or m["import"].rpartition(":")[2]), "model id")
        if "parent" in m and ckpt is None:
            raise PruneScopeError(
                f"[[models]] {model_id!r} has a parent but no checkpoint",
                'a model pruned elsewhere needs checkpoint = "path/to/state_dict.pt"',
            )
        if "reported_accuracy" in m:
            acc = m["reported_accuracy"]
            _require(0 <= acc <= 1, f"[[models]] {model_id!r} reported_accuracy", acc, "is not a fraction", "e.g. 0.93")
        method = check_id(m.get("method", "external"), "method name")
        store_id = model_id if "id" in m or "parent" in m else check_id(f"{model_id}-dense", "model id")
        models.append(
            ModelConfig(
                model_id,
                m.get("arch"),
                m.get("import"),
                m.get("kwargs", {}),
                ckpt,
                m.get("parent"),
                method,
                model_id=store_id,
                import_dir=str(base_dir) if "import" in m else None,
                reported_accuracy=float(m["reported_accuracy"]) if "reported_accuracy" in m else None,
                seeds=_seeds(m.get("seeds", [0]), f"[[models]] {model_id!r} seeds"),
            )
        )
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise PruneScopeError(f"[[models]] ids repeat: {ids}", "give each model a distinct `id`")
    for m in models:
        if m.parent is not None and m.parent not in {b.id for b in models if b.parent is None}:
            raise PruneScopeError(
                f"[[models]] {m.id!r}: parent {m.parent!r} is not a dense [[models]] entry",
                f"use one of: {', '.join(b.id for b in models if b.parent is None)}",
            )

    tr = _take(
        top.get("train", {}),
        "[train]",
        {
            "epochs": int,
            "batch_size": int,
            "lr": (int, float),
            "momentum": (int, float),
            "weight_decay": (int, float),
            "lr_schedule": str,
            "augment": str,
        },
    )
    _check_numbers(tr, "[train]")
    train = TrainConfig(**tr)
    _choice(train.lr_schedule, LR_SCHEDULES, "lr_schedule")
    _choice(train.augment, AUGMENTS, "augment")
    ft = _take(
        top.get("finetune", {}),
        "[finetune]",
        {
            "lr": (int, float),
            "momentum": (int, float),
            "weight_decay": (int, float),
            "gamma": (int, float),
            "batch_size": int,
        },
    )
    _check_numbers(ft, "[finetune]")
    finetune = FinetuneConfig(**ft)
    mp = _take(
        top.get("mpt", {}),
        "[mpt]",
        {"epochs": int, "lr": (int, float), "momentum": (int, float), "weight_decay": (int, float), "batch_size": int},
    )
    _check_numbers(mp, "[mpt]")
    mpt = MptConfig(**mp)

    specs: list[PruneSpec] = []
    # Each grid key takes one value or a list of values of its type (bool is not a number here).
    grid_values: dict[str, tuple[Callable[[Any], bool], str]] = {
        "method": (lambda v: isinstance(v, str), 'a name, e.g. "magnitude"'),
        "sparsity": (_is_number, "a number, e.g. 0.5"),
        "scope": (lambda v: isinstance(v, str), 'a name, e.g. "global"'),
        "schedule": (lambda v: isinstance(v, str), 'a name, e.g. "oneshot"'),
        "steps": (_is_int, "a whole number, e.g. 3"),
        "finetune_epochs": (_is_int, "a whole number, e.g. 2"),
        "taylor_batches": (_is_int, "a whole number, e.g. 8"),
        "init": (lambda v: isinstance(v, str), 'a name, e.g. "kaiming_normal"'),
        "last_layer_dense": (lambda v: isinstance(v, bool), "true or false"),
    }
    for i, entry in enumerate(top.get("prune", [])):
        p = _take(entry, f"[[prune]] #{i + 1}", {**{k: object for k in grid_values}, "exclude": list, "seeds": list})
        for key in ("method", "sparsity"):
            if key not in p:
                raise PruneScopeError(
                    f"[[prune]] #{i + 1} has no `{key}`", 'e.g. method = ["random", "magnitude"], sparsity = [0.5, 0.9]'
                )
        exclude = tuple(p.pop("exclude", ()))
        seeds = _seeds(p.pop("seeds"), f"[[prune]] #{i + 1} seeds") if "seeds" in p else ()
        for pattern in exclude:
            ok = isinstance(pattern, str)
            _require(
                ok, f"[[prune]] #{i + 1} exclude", list(exclude), "must be layer name patterns", 'e.g. ["0", "fc*"]'
            )
        axes = {k: v if isinstance(v, list) else [v] for k, v in p.items()}
        _check_method_keys(axes, i)
        for key, values in axes.items():
            ok, example = grid_values[key]
            _require(bool(values), f"[[prune]] #{i + 1} {key}", p[key], "is an empty list", f"give {example}")
            for v in values:
                _require(ok(v), f"[[prune]] #{i + 1} {key}", p[key], "has the wrong type", f"give {example} or a list")
        for combo in itertools.product(*axes.values()):
            spec = PruneSpec(**dict(zip(axes.keys(), combo)), exclude=exclude)
            _choice(spec.method, PRUNERS.names(), "pruning method")
            _check_scope(spec.scope, spec.method, f"[[prune]] #{i + 1}")
            _choice(spec.schedule, SCHEDULES, "pruning schedule")
            if not 0.0 < float(spec.sparsity) < 1.0:
                raise PruneScopeError(
                    f"[[prune]] #{i + 1}: sparsity {spec.sparsity} is outside (0, 1)",
                    "give fractions of weights removed, e.g. 0.5",
                )
            if spec.steps < 1 or (spec.schedule == "oneshot" and spec.steps != 1):
                raise PruneScopeError(
                    f"[[prune]] #{i + 1}: steps = {spec.steps} with schedule {spec.schedule!r}",
                    'steps >= 2 goes with schedule = "iterative"; one-shot has 1 step',
                )
            if spec.finetune_epochs < 0:
                raise PruneScopeError(f"[[prune]] #{i + 1}: finetune_epochs must be >= 0", "use 0 for no fine-tuning")
            if spec.taylor_batches < 1:
                raise PruneScopeError(f"[[prune]] #{i + 1}: taylor_batches must be >= 1", "e.g. taylor_batches = 8")
            _choice(spec.init, ("kaiming_normal", "signed_constant"), "mpt init")
            if spec.method == "mpt" and (spec.schedule != "oneshot" or spec.finetune_epochs):
                raise PruneScopeError(
                    f"[[prune]] #{i + 1}: mpt is trained from random initialisation, "
                    "so it has no iterative schedule or fine-tuning",
                    'use schedule = "oneshot" and finetune_epochs = 0 for mpt (set its training in [mpt])',
                )
            specs.append(
                PruneSpec(
                    spec.method,
                    float(spec.sparsity),
                    spec.scope,
                    spec.schedule,
                    spec.steps,
                    spec.finetune_epochs,
                    exclude,
                    spec.taylor_batches,
                    spec.init,
                    spec.last_layer_dense,
                    seeds,
                )
            )
    sensitivity = tuple(_sensitivity(entry, i) for i, entry in enumerate(top.get("sensitivity", [])))
    for i, spec in enumerate(specs):
        _check_seeds(spec.seeds, models, f"[[prune]] #{i + 1}")
    for i, sens in enumerate(sensitivity):
        _check_seeds(sens.seeds, models, f"[[sensitivity]] #{i + 1}")

    ev = _take(
        top.get("evaluation", {}),
        "[evaluation]",
        {
            "corruptions": (list, str),
            "severities": list,
            "batch_size": int,
            "features": str,
            "corrupted_root": str,
            "frost_dir": str,
            "margin": str,
            "replicas": str,
            "full_angles_max_classes": int,
            "nearest_k": int,
            "unit_rows": int,
        },
    )
    _check_numbers(ev, "[evaluation]")
    for key in ("full_angles_max_classes", "nearest_k", "unit_rows"):
        _require(ev.get(key, 1) >= 1, f"[evaluation] {key}", ev.get(key), "must be at least 1", f"e.g. {key} = 20")
    corruptions = ev.get("corruptions", [])
    if corruptions == "all":
        corruptions = list(CORRUPTIONS.names())
    elif isinstance(corruptions, str):
        raise PruneScopeError(f"[evaluation] corruptions = {corruptions!r}", 'give a list of names, or "all"')
    for c in corruptions:
        _require(isinstance(c, str), "[evaluation] corruptions", corruptions, "must be names", '"all" or ["fog"]')
        _choice(c, CORRUPTIONS.names(), "corruption")
    severities = tuple(ev.get("severities", [1, 2, 3, 4, 5]))
    if any(not _is_int(s) or not 1 <= s <= 5 for s in severities):
        raise PruneScopeError(
            f"[evaluation] severities {list(severities)} must be integers 1 to 5", "e.g. severities = [1, 3, 5]"
        )
    for what, values in (("corruptions", corruptions), ("severities", severities)):
        repeated = sorted({v for v in values if list(values).count(v) > 1}, key=str)
        if repeated:
            raise PruneScopeError(
                f"[evaluation] {what} lists {', '.join(map(str, repeated))} more than once "
                "(each evaluation set would be counted twice in robustness)",
                f"list each of the {what} once",
            )
    paths = {k: _resolve(ev[k], base_dir) for k in ("corrupted_root", "frost_dir") if k in ev}
    evaluation = EvalConfig(
        tuple(corruptions),
        severities,
        ev.get("batch_size", 512),
        _choice(ev.get("features", "auto"), FEATURE_MODES, "features mode"),
        **paths,
        margin=_choice(ev.get("margin", MARGIN_EQ5), MARGIN_DEFINITIONS, "margin definition"),
        replicas=_choice(ev.get("replicas", "all"), REPLICA_SETS, "replicas setting"),
        full_angles_max_classes=ev.get("full_angles_max_classes", ANGLES_FULL_MAX_CLASSES),
        nearest_k=ev.get("nearest_k", ANGLES_NEAREST_K),
        unit_rows=ev.get("unit_rows", UNIT_ROWS),
    )

    device = _choice(top.get("device", "auto"), DEVICES, "device")
    ex = _take(
        top.get("execution", {}), "[execution]", {"executor": str, "workers": int, "scheduler": str, "threads": int}
    )
    return RunConfig(
        name,
        top.get("seed", 0),
        device,
        dataset,
        tuple(models),
        train,
        finetune,
        mpt,
        tuple(specs),
        evaluation,
        raw,
        base_dir,
        execution_config(**ex),
        sensitivity,
        _attribution(top["attribution"]) if "attribution" in top else AttributionConfig(),
    )


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """`seeds = [0, 1, 2]`: distinct whole numbers >= 0, at least one."""
    ok = isinstance(value, list) and bool(value) and all(_is_int(v) and v >= 0 for v in value)
    _require(
        ok and len(set(value)) == len(value), where, value, "must be distinct whole numbers >= 0", "seeds = [0, 1, 2]"
    )
    return tuple(value)


def _check_seeds(seeds: tuple[int, ...], models: list[ModelConfig], where: str) -> None:
    """A pruned model of seed s is pruned from its dense model of seed s: every dense model needs it."""
    for base in models:
        missing = [s for s in seeds if base.parent is None and s not in base.seeds]
        if missing:
            raise PruneScopeError(
                f"{where} seeds {list(seeds)}: [[models]] {base.id!r} has no dense model of seed(s) {missing}",
                f"add them to its seeds (now {list(base.seeds)}) or drop them here",
            )


def _check_scope(scope: str, method: str, where: str) -> None:
    """`global`, `layer` or `layer:<name>` (a layer of the model: checked when the run is planned)."""
    from pipeline.pruning import PRUNERS, SCOPES

    if layer_of(scope) is None:
        _choice(scope, SCOPES, "pruning scope")
        return
    _require(bool(layer_of(scope)), f"{where} scope", scope, "names no layer", 'e.g. scope = "layer:conv1"')
    if PRUNERS.get(method).trains_from_scratch:
        raise PruneScopeError(
            f"{where}: {method} trains every layer from scratch, so it has no single-layer scope {scope!r}",
            'use scope = "global" or "layer" for it',
        )


def _sensitivity(entry: Any, i: int) -> SensitivitySpec:
    """One `[[sensitivity]]` table: method (default magnitude), sparsity (one or a list), seeds, corruptions."""
    from pipeline.pruning import PRUNERS

    where = f"[[sensitivity]] #{i + 1}"
    t = _take(entry, where, {"method": str, "sparsity": (int, float, list), "seeds": list, "corruptions": bool})
    method = _choice(t.get("method", "magnitude"), PRUNERS.names(), "pruning method")
    if PRUNERS.get(method).trains_from_scratch:
        raise PruneScopeError(f"{where}: {method} cannot prune one layer alone", 'use e.g. method = "magnitude"')
    values = t.get("sparsity")
    _require(values is not None, f"{where} sparsity", values, "is required", "sparsity = [0.5, 0.9]")
    values = values if isinstance(values, list) else [values]
    ok = bool(values) and all(_is_number(v) and 0 < v < 1 for v in values)
    _require(ok, f"{where} sparsity", t["sparsity"], "must be fractions in (0, 1)", "sparsity = [0.5, 0.9]")
    seeds = _seeds(t["seeds"], f"{where} seeds") if "seeds" in t else ()
    return SensitivitySpec(method, tuple(float(v) for v in values), seeds, t.get("corruptions", False))


def _attribution(table: dict[str, Any]) -> AttributionConfig:
    """`[attribution]`: the methods (default all three) and their settings, each checked."""
    at = _take(
        table,
        "[attribution]",
        {
            "methods": list,
            "window": int,
            "stride": int,
            "perturbations_per_eval": int,
            "n_steps": int,
            "internal_batch_size": int,
            "per_class": int,
            "top_flips": int,
            "corrupted": bool,
        },
    )
    from pipeline.attribution import ATTRIBUTIONS

    methods = at.pop("methods", ATTRIBUTIONS.names())
    _require(bool(methods), "[attribution] methods", methods, "is empty", f"use some of {ATTRIBUTIONS.names()}")
    for m in methods:
        _require(isinstance(m, str), "[attribution] methods", methods, "must be names", '["occlusion", "gradcam"]')
        _choice(m, ATTRIBUTIONS.names(), "attribution method")
    _require(len(set(methods)) == len(methods), "[attribution] methods", methods, "repeats a method", "list each once")
    for key in ("window", "stride", "perturbations_per_eval", "n_steps", "internal_batch_size"):
        if key in at:
            _require(at[key] >= 1, f"[attribution] {key}", at[key], "must be at least 1", f"e.g. {key} = 4")
    for key in ("per_class", "top_flips"):
        if key in at:
            _require(at[key] >= 0, f"[attribution] {key}", at[key], "must be 0 or more", f"e.g. {key} = 2")
    config = AttributionConfig(tuple(methods), **at)
    _require(
        config.per_class + config.top_flips > 0,
        "[attribution] per_class + top_flips",
        0,
        "selects no samples",
        "e.g. per_class = 2",
    )
    return config
