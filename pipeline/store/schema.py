"""Every column of the store contract, declared once: name, kind, required or optional with its
default, the contract version that added it, and what it means.

Writers build their Arrow schemas from these declarations, readers cast to them and fill
optional columns, `validate` checks against them and docs/store.md documents them (a test
holds the two together). A feature that needs a new column adds it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1

RUN_JSON_KEYS = ("schema_version", "dataset", "num_classes", "class_names")  # required keys of run.json
RUN_JSON_OPTIONAL = (  # written by the pipeline
    "image_shape",
    "created",
    "config",
    "prunable_layers",
    "margin",
    "attribution",
    "angles",
)
# optional keys present only in runs with that feature: no warning without
RUN_JSON_FEATURES = ("attribution", "angles")

# run.json "margin": which definition the samples' `margin` column holds (shared/DESIGN.md §1).
MARGIN_EQ5 = "eq5"  # paper eq. 5: min_j |(W_y − W_j)·X| / ‖W_y − W_j‖, no bias, negated when wrong
MARGIN_SIGNED = "signed"  # min_j ((W_y − W_j)·X + b_y − b_j) / ‖W_y − W_j‖, the bias-aware signed distance
MARGIN_DEFINITIONS = (MARGIN_EQ5, MARGIN_SIGNED)
MARGIN_LABELS = {MARGIN_EQ5: "margin (eq. 5)", MARGIN_SIGNED: "signed margin (bias-aware)"}

MARGIN_MISSING = MARGIN_SIGNED  # what a run without the key holds: runs written before it existed

# run.json "angles": which rows hold every angle (`angles`) and which only their k nearest classes
# (`nearest`, `nearest_angles`). Without the key every row holds `angles` (the form of every run
# before many-class runs, and of any run with at most ANGLES_FULL_MAX_CLASSES classes).
ANGLES_ALL = "all"  # every row: the angle to every class direction
ANGLES_CLEAN = "clean"  # clean rows: every angle; corrupted rows: the k nearest classes and their angles
ANGLES_FULL_MAX_CLASSES = 100  # the pipeline's default: above this many classes, corrupted rows keep k angles
ANGLES_NEAREST_K = 20  # the pipeline's default k
ANGLE_FORM_COLUMNS = ("angles", "nearest", "nearest_angles")  # a samples file holds `angles`, the other two, or all


def angles_stored(meta: dict[str, Any]) -> dict[str, Any]:
    """run.json "angles" with its defaults: `full` (ANGLES_ALL or ANGLES_CLEAN) and `k` (None when every
    row holds every angle)."""
    raw = meta.get("angles") if isinstance(meta.get("angles"), dict) else {}
    full = raw.get("full", ANGLES_ALL)
    k = raw.get("k")
    return {"full": full, "k": k if isinstance(k, int) and not isinstance(k, bool) and k > 0 else None}


INIT_UNTRAINED = "untrained"  # models `init` of a dense model trained for 0 epochs ([train] epochs = 0)


def margin_definition(meta: dict[str, Any]) -> str:
    """The margin definition of a run: its run.json "margin", or the signed one for runs without the key."""
    return meta.get("margin", MARGIN_MISSING)


def margin_label(meta: dict[str, Any]) -> str:
    """How views and tables name a run's margin, so a reader knows which definition they see."""
    definition = margin_definition(meta)
    return MARGIN_LABELS.get(definition, f"margin ({definition})")


@dataclass(frozen=True)
class Column:
    """One column. `size` names the run quantity that fixes a fixed-size list's length."""

    name: str
    kind: pa.DataType
    doc: str
    required: bool = True
    default: Any = None
    since: int = 1
    size: str | None = None
    derived: bool = False  # computed by readers when missing, so its absence is no warning

    def arrow_type(self, sizes: dict[str, int] | None = None) -> pa.DataType:
        if self.size is None:
            return self.kind
        if not sizes or self.size not in sizes:
            return pa.list_(self.kind)
        return pa.list_(self.kind, sizes[self.size])

    @property
    def kind_name(self) -> str:
        """The kind as docs/store.md writes it."""
        return f"fixed_size_list<{self.kind}>[{self.size}]" if self.size else str(self.kind)


@dataclass(frozen=True)
class TableSpec:
    """The columns of one table of a run, and where its files are."""

    name: str
    path: str
    columns: tuple[Column, ...]
    required: bool = True

    def schema(self, **sizes: int) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type(sizes)) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


MODELS_TABLE = TableSpec(
    "models",
    "models.parquet",
    (
        Column("model_id", pa.string(), "unique id; letters, digits and `_ . + -`, at most 128"),
        Column("arch", pa.string(), "architecture name (or the factory that built the model)"),
        Column("method", pa.string(), "pruning method; `dense` for an unpruned model"),
        Column(
            "scope",
            pa.string(),
            "`global`, `layer` (the fraction in each layer) or `layer:<name>` (only layer <name> pruned: "
            "per-layer sensitivity); null for dense models",
        ),
        Column("schedule", pa.string(), "`oneshot` or `iterative`; null for dense models"),
        Column("steps", pa.int32(), "pruning steps of an iterative schedule", required=False, default=1),
        Column("finetune_epochs", pa.int32(), "fine-tuning epochs after (each step of) pruning"),
        Column("target_sparsity", pa.float64(), "the requested fraction removed"),
        Column("sparsity", pa.float64(), "measured fraction of zero weights over the prunable layers"),
        Column("params_total", pa.int64(), "number of parameters"),
        Column("params_nonzero", pa.int64(), "number of non-zero parameters"),
        Column("parent_id", pa.string(), "model_id of the dense model it was pruned from; null for dense"),
        Column("clean_accuracy", pa.float64(), "accuracy on the clean test set"),
        Column(
            "seed",
            pa.int64(),
            "the seed the model was built with: derived from the run's `seed` and the model_id, so every model "
            "draws its own numbers (`replicate` says which of the config's `seeds` built it)",
        ),
        Column("checkpoint", pa.string(), "path of the state_dict relative to the run folder, or null"),
        Column(
            "init",
            pa.string(),
            "where the weights came from: `trained`, `untrained` (`[train] epochs = 0`), `parent`, "
            "`random` (MPT) or `external`",
            required=False,
        ),
        Column(
            "channel_sparsity",
            pa.float64(),
            "fraction of channels removed (structured methods)",
            required=False,
        ),
        Column(
            "replicate",
            pa.int64(),
            "which entry of the config's `seeds` built the model (0 without `seeds`)",
            required=False,
            default=0,
        ),
        Column(
            "population",
            pa.string(),
            "models that differ only in their seed share it (the id without `-seed<s>`): PIE compare the "
            "predictions of populations; null: a population of its own",
            required=False,
        ),
    ),
)

EVALUATIONS_TABLE = TableSpec(
    "evaluations",
    "evaluations.parquet",
    (
        Column("model_id", pa.string(), "a model of models.parquet"),
        Column("corruption", pa.string(), "`clean` or a CIFAR-10-C corruption name"),
        Column("severity", pa.int8(), "1-5 for a corruption, 0 for clean"),
        Column("n", pa.int64(), "number of samples evaluated"),
        Column("accuracy", pa.float64(), "fraction classified correctly"),
        Column("mean_angle", pa.float64(), "mean angle to the true class direction (degrees)"),
        Column("mean_length", pa.float64(), "mean feature length"),
        Column("mean_margin", pa.float64(), "mean margin"),
        Column(
            "correct_bits",
            pa.binary(),
            "the samples' `correct` as a bitset: bit i (most significant first, numpy.packbits) is sample_id i; "
            "readers compute it from the samples when it is missing",
            required=False,
            derived=True,
        ),
        Column(
            "preds",
            pa.list_(pa.int16()),
            "the samples' `pred` in sample_id order (-1 for an id without a row); the pipeline writes it for the "
            "clean set; readers read the samples where it is missing or null",
            required=False,
            derived=True,
        ),
    ),
)

# evaluations.parquet without its per-sample arrays, which only selections and the similarity view read
EVALUATION_SUMMARY = [c.name for c in EVALUATIONS_TABLE.columns if not c.derived]

HEADS_TABLE = TableSpec(
    "heads",
    "heads.parquet",
    (
        Column("model_id", pa.string(), "a model of models.parquet"),
        Column("class_index", pa.int32(), "class j, 0 to num_classes - 1 (one row per class and model)"),
        Column("weight", pa.list_(pa.float32()), "W_j, the class direction (row j of the final linear layer)"),
        Column("bias", pa.float32(), "b_j"),
    ),
)

IMAGES_TABLE = TableSpec(
    "images",
    "images.parquet",
    (
        Column("sample_id", pa.int32(), "test sample id"),
        Column("label", pa.int16(), "true class"),
        Column("png", pa.binary(), "the clean test image as PNG bytes"),
    ),
    required=False,
)

SAMPLES_TABLE = TableSpec(
    "samples",
    "samples/model_id=<id>/*.parquet",
    (
        Column("corruption", pa.string(), "`clean` or a corruption name"),
        Column("severity", pa.int8(), "1-5 for a corruption, 0 for clean"),
        Column("sample_id", pa.int32(), "test sample id, the same in every evaluation set"),
        Column("label", pa.int16(), "true class"),
        Column("pred", pa.int16(), "predicted class"),
        Column("correct", pa.bool_(), "pred == label"),
        Column("confidence", pa.float32(), "softmax probability of the prediction"),
        Column("loss", pa.float32(), "cross-entropy loss"),
        Column("length", pa.float32(), "feature length ‖X‖"),
        Column(
            "margin",
            pa.float32(),
            "margin to the decision boundary (negative when wrong), by the definition in run.json `margin`",
        ),
        Column("angle", pa.float32(), "angle to the true class direction (degrees)"),
        Column(
            "angles",
            pa.float32(),
            "angle to every class direction (degrees); may be missing (or null) in rows that hold `nearest` "
            "and `nearest_angles` instead (run.json `angles`)",
            required=False,
            size="num_classes",
        ),
        Column(
            "nearest",
            pa.int16(),
            "the k classes whose directions are nearest (smallest angle first; run.json `angles.k`); "
            "-1 where the feature vector is all zeros",
            required=False,
            size="k",
        ),
        Column(
            "nearest_angles",
            pa.float32(),
            "the angles to the `nearest` classes (degrees), in the same order",
            required=False,
            size="k",
        ),
        Column(
            "robustness",
            pa.float32(),
            "fraction of the corrupted versions classified correctly (clean rows; NaN elsewhere)",
            required=False,
            default=float("nan"),
        ),
        Column(
            "zero_feature", pa.bool_(), "the feature vector is all zeros (angles NaN)", required=False, default=False
        ),
    ),
)

FEATURES_TABLE = TableSpec(
    "features",
    "features/model_id=<id>/*.parquet",
    (
        Column("sample_id", pa.int32(), "test sample id"),
        Column("corruption", pa.string(), "`clean` or a corruption name"),
        Column("severity", pa.int8(), "1-5 for a corruption, 0 for clean"),
        Column("feature", pa.float32(), "X, the input of the final linear layer", size="feature_dim"),
    ),
    required=False,
)

# Attribution maps (issue 15): drift against the parent's map of the same sample, set and method.
TOP_FRACTION = 0.1  # iou_top10: the top 10 % of pixels by attribution

ATTRIBUTIONS_TABLE = TableSpec(
    "attributions",
    "attributions/model_id=<id>/*.parquet",
    (
        Column("sample_id", pa.int32(), "test sample id (the same samples for every model of the run)"),
        Column("corruption", pa.string(), "`clean` or a corruption name"),
        Column("severity", pa.int8(), "1-5 for a corruption, 0 for clean"),
        Column("method", pa.string(), "`occlusion`, `integrated_gradients`, `gradcam` (or another tool's name)"),
        Column("target", pa.int16(), "the class the map explains (the pipeline uses the sample's label)"),
        Column(
            "map",
            pa.list_(pa.float32()),
            "the attribution of every pixel, H×W values row-major (run.json `attribution.shape`)",
        ),
        Column(
            "spearman",
            pa.float32(),
            "Spearman rank correlation with the parent model's map of the same sample, set and method "
            "(NaN without a parent)",
            required=False,
            default=float("nan"),
        ),
        Column(
            "iou_top10",
            pa.float32(),
            "IoU of the top 10 % pixels of this map and of the parent's (NaN without a parent)",
            required=False,
            default=float("nan"),
        ),
    ),
    required=False,
)

TABLES = {
    t.name: t
    for t in (
        MODELS_TABLE,
        EVALUATIONS_TABLE,
        HEADS_TABLE,
        IMAGES_TABLE,
        SAMPLES_TABLE,
        FEATURES_TABLE,
        ATTRIBUTIONS_TABLE,
    )
}

MODELS_SCHEMA = MODELS_TABLE.schema()
EVALUATIONS_SCHEMA = EVALUATIONS_TABLE.schema()
HEADS_SCHEMA = HEADS_TABLE.schema()
IMAGES_SCHEMA = IMAGES_TABLE.schema()
ATTRIBUTIONS_SCHEMA = ATTRIBUTIONS_TABLE.schema()


def samples_schema(num_classes: int, k: int | None = None) -> pa.Schema:
    """Columns of one per-sample file (model_id comes from the hive partition folder): with every
    angle (`angles`), or with `k`, the k nearest classes and their angles instead."""
    schema = SAMPLES_TABLE.schema(num_classes=num_classes, k=k or 1)
    drop = ("nearest", "nearest_angles") if k is None else ("angles",)
    return pa.schema([f for f in schema if f.name not in drop])


def features_schema(dim: int) -> pa.Schema:
    return FEATURES_TABLE.schema(feature_dim=dim)
