"""The app's only door to the store: checked names, column- and partition-pruned reads, memoised.

Every run name and model id that comes from the browser is checked against the store's own
listing before any file is touched. Reads go through pyarrow dataset filters, so a view
loads only the partitions and columns it draws; results are memoised in the shared cache
(app/cache.py: diskcache for the gunicorn workers of one host, Redis across hosts) and keyed
on the run's modification time, so a rebuilt run is never served stale.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from PIL import Image  # at import, not in a callback: see tests/test_first_page.py

from app.cache import shared_cache
from pipeline import store
from pipeline.store import (
    EvalSet,
    Problem,
    PruneScopeError,
    run_angle_summary,
    run_table1,
)
from pipeline.store.bits import KEYS as BIT_KEYS
from pipeline.store.io import (
    SamplesIndex,
    attribution_models,
    attribution_shape,
    conform,
    load,
    read_attributions,
    read_samples,
    run_meta,
)
from pipeline.store.schema import EVALUATION_SUMMARY, EVALUATIONS_TABLE, IMAGES_TABLE, MODELS_TABLE
from pipeline.store.similarity import Similarity, run_similarity
from pipeline.store.validate import check_run

_MISSING = object()  # not in the in-process memo (None is a value there)
LOCAL_ENTRIES = 64  # in-process memo entries per reader (per gunicorn worker)
SUBSET_BLOCK = 1024  # samples a subset's accuracy picks at once: 20 MB of bytes at 19,200 evaluations


def code_version() -> str:
    """A digest of the source that computes and pickles memoised values (app/ and the store
    contract): the shared cache outlives an upgrade, and a value pickled by other code (a class
    without an attribute the new code reads) must not be read back."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*(root / "app").rglob("*.py"), *(root / "pipeline" / "store").rglob("*.py")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = code_version()
SCALAR_COLUMNS = ["sample_id", "label", "pred", "correct", "confidence", "loss", "length", "margin", "angle"]


class StoreError(PruneScopeError):
    """A store or run the app cannot show; the page displays its message and fix."""


@contextmanager
def store_errors() -> Iterator[None]:
    """Any failure to read the store, as a StoreError naming the file and the fix (never a 500)."""
    try:
        yield
    except StoreError:
        raise
    except PruneScopeError as exc:
        raise StoreError(exc.problem, exc.fix) from None
    except (pa.ArrowException, OSError, KeyError, ValueError, IndexError) as exc:
        raise StoreError(
            f"the run could not be read: {exc}", "python -m pipeline validate RUN_DIR names the problem"
        ) from None


class StoreReader:
    """Read-only access to one store folder."""

    def __init__(self, store_dir: str | Path, cache_dir: str | Path | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.cache = shared_cache(cache_dir)  # diskcache on this host, or Redis shared by hosts
        self._local: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # guards _local and _flights: a worker's callbacks run in threads
        self._flights: dict[str, list] = {}  # memo key -> [its lock, threads using it, the thread computing it]

    # ------------------------------------------------------------ names

    def runs(self) -> list[str]:
        return store.list_runs(self.store_dir)

    def run_dir(self, run: str) -> Path:
        """The folder of `run`, which must be one of the store's runs (never a path from a request);
        asked for on every memoised read, so it tests this one name, not the store's listing."""
        if store.is_run(self.store_dir, run):
            return self.store_dir / run
        runs = self.runs()
        if run not in runs:
            raise StoreError(
                f"there is no run {run!r} in {self.store_dir}",
                f"pick one of: {', '.join(runs) or '(none: build one with python -m pipeline run configs/demo.toml)'}",
            )
        return self.store_dir / run

    def check_model(self, run: str, model_id: str) -> str:
        known = self._memo(run, "model_ids", (), lambda: frozenset(self.models(run)["model_id"]))
        if model_id not in known:
            raise StoreError(
                f"run {run!r} has no model {model_id!r}",
                "pick one of the run's model ids "
                "(the evaluation table shows them; python -m pipeline report STORE/RUN lists them)",
            )
        return model_id

    def check_evalset(self, run: str, model_id: str, corruption: str, severity: int) -> tuple[str, int]:
        keys = self._memo(
            run,
            "evalset_keys",
            (),
            lambda: frozenset(
                zip(*(self.evaluations(run)[k].tolist() for k in ("model_id", "corruption", "severity")))
            ),
        )  # a set lookup: every samples() call checks its set (a pandas filter was 8 ms at load 6)
        if (model_id, corruption, int(severity)) not in keys:
            raise StoreError(
                f"model {model_id!r} has no evaluation on {EvalSet(corruption, severity).name}",
                "finish the run with python -m pipeline run CONFIG (it resumes), or pick another evaluation set",
            )
        return corruption, int(severity)

    # ------------------------------------------------------------ memo

    def version(self, run: str) -> str:
        """A stamp of the run's tables (its run.json, models and evaluations): another stamp, another run version."""
        run_dir = self.run_dir(run)
        stamps = [
            f"{p.stat().st_mtime_ns}"
            for p in (run_dir / store.RUN_JSON, run_dir / store.MODELS, run_dir / store.EVALUATIONS)
            if p.exists()
        ]
        return "-".join(stamps)

    def _memo_key(self, run: str, name: str, args: Sequence[Any]) -> str:
        return hashlib.sha256(
            repr((CODE_VERSION, str(self.store_dir), run, self.version(run), name, tuple(args))).encode()
        ).hexdigest()

    def _memoised(self, run: str, name: str, args: Sequence[Any] = ()) -> bool:
        """Whether `name(args)` of this run version is ready without computing it
        (in this process or the shared cache)."""
        key = self._memo_key(run, name, args)
        return key in self._local or (self.cache is not None and key in self.cache)

    def _memo(self, run: str, name: str, args: Sequence[Any], fn: Callable[[], Any]) -> Any:
        """fn() memoised per run version: in this process first, then in the shared cache (workers, hosts).
        One thread computes a key at a time: a page load's callbacks, which ask for the same tables at
        once, wait for its answer instead of each computing it again."""
        key = self._memo_key(run, name, args)
        hit = self._recall(key)
        if hit is not _MISSING:
            return hit
        with self._flight(key):
            hit = self._recall(key)  # computed while this thread waited
            if hit is _MISSING:
                hit = self.cache.get(key, default=None) if self.cache is not None else None
                computed = hit is None
                if computed:
                    hit = fn()
                with self._lock:  # here first: the threads waiting for it need not wait for the shared cache
                    self._local[key] = hit
                    while len(self._local) > LOCAL_ENTRIES:
                        self._local.popitem(last=False)
                if computed and self.cache is not None:
                    self.cache.set(key, hit, expire=24 * 3600)
        return hit

    def _recall(self, key: str) -> Any:
        """The in-process memo of `key`, or _MISSING."""
        with self._lock:
            if key not in self._local:
                return _MISSING
            self._local.move_to_end(key)
            return self._local[key]

    @contextmanager
    def _flight(self, key: str) -> Iterator[None]:
        """Hold `key`'s lock (made on first use, dropped when no thread uses it). A thread asking again
        for the key it is computing would wait for itself: that is a bug, said as one."""
        me = threading.get_ident()
        with self._lock:
            flight = self._flights.setdefault(key, [threading.Lock(), 0, None])  # lock, users, owner
            if flight[2] == me:
                raise RuntimeError(f"memo {key[:12]} asked for again while this thread computes it")
            flight[1] += 1
        try:
            with flight[0]:
                flight[2] = me
                try:
                    yield
                finally:
                    flight[2] = None
        finally:
            with self._lock:
                flight[1] -= 1
                if not flight[1]:
                    del self._flights[key]

    def derived(self, run: str, name: str, fn: Callable[[], Any]) -> Any:
        """fn(), a table a view derives from the run's tables alone (`name` says which), memoised per
        run version like the reader's own tables: a view redrawn for a new reference reuses it."""
        return self._memo(run, f"derived:{name}", (), fn)

    # ------------------------------------------------------------ tables

    def meta(self, run: str) -> dict[str, Any]:
        """run.json; num_classes and class_names are always there (problems() says what was missing)."""
        with store_errors():  # memoised: views ask for it many times a request (1000 class names a read)
            return self._memo(run, "meta", (), lambda: run_meta(self.run_dir(run))[0])

    def problems(self, run: str) -> list[Problem]:
        """The run's problems (errors first) from a quick validation (no per-sample footers), memoised
        per run version; `python -m pipeline validate` checks deeper."""
        with store_errors():
            return self._memo(run, "problems", (), lambda: check_run(self.run_dir(run), deep=False))

    def _table(self, run: str, spec: store.TableSpec, columns: list[str] | None = None) -> pd.DataFrame:
        self.meta(run)
        with store_errors():
            return load(self.run_dir(run), spec, columns).to_pandas()

    def models(self, run: str) -> pd.DataFrame:
        return self._memo(run, "models", (), lambda: self._table(run, MODELS_TABLE))

    def index(self, run: str, model_id: str) -> SamplesIndex:
        """Which files of the model's samples partition hold which evaluation sets (memoised per run version)."""

        def build() -> SamplesIndex:
            with store_errors():
                ev = self.evaluations(run)
                mine = ev[ev["model_id"] == model_id]
                expected = {EvalSet(c, s) for c, s in zip(mine["corruption"], mine["severity"])}
                return SamplesIndex(self.run_dir(run), model_id, expected)

        return self._memo(run, "index", (model_id,), build)

    def evaluations(self, run: str) -> pd.DataFrame:
        """Evaluations joined with each model's arch, method, variant columns and sparsity."""

        def load() -> pd.DataFrame:
            ev = self._table(run, EVALUATIONS_TABLE, EVALUATION_SUMMARY)
            cols = [
                "model_id",
                "arch",
                "method",
                "scope",
                "schedule",
                "steps",
                "finetune_epochs",
                "sparsity",
                "target_sparsity",
                "replicate",
            ]
            return ev.merge(self.models(run)[cols], on="model_id", how="left")

        return self._memo(run, "evaluations", (), load)

    def samples(
        self,
        run: str,
        model_id: str,
        corruption: str,
        severity: int,
        with_angles: bool = False,
        labels: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Per-sample rows of one evaluation set (optionally only some labels), sorted by sample id.

        With `with_angles`, columns a0..a{C−1} hold the angle to every class direction.
        """
        self.check_model(run, model_id)
        self.check_evalset(run, model_id, corruption, severity)
        key = (model_id, corruption, int(severity), with_angles, tuple(sorted(labels)) if labels is not None else None)

        def read() -> pd.DataFrame:
            columns = SCALAR_COLUMNS + ["robustness"] + (["angles"] if with_angles else [])
            with store_errors():
                table = read_samples(
                    self.index(run, model_id),
                    EvalSet(corruption, severity),
                    columns,
                    self.meta(run)["num_classes"],
                    list(labels) if labels is not None else None,
                )
            df = table.drop_columns(["angles"]).to_pandas() if with_angles else table.to_pandas()
            if with_angles:
                angles = table.column("angles").combine_chunks()
                c = angles.type.list_size
                mat = angles.flatten().to_numpy(zero_copy_only=False).reshape(-1, c)
                df = pd.concat([df, pd.DataFrame(mat, columns=[f"a{j}" for j in range(c)])], axis=1)
            return df.sort_values("sample_id", ignore_index=True)

        return self._memo(run, "samples", key, read)

    def correctness(self, run: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Every evaluation's per-sample correctness as packed bits, memoised, so any subset's accuracy
        is a pick of rows: row j holds byte j of each evaluation's bitset (samples 8j to 8j + 7, the first
        in the high bit), a column per evaluation in the keys' order. From evaluations.parquet's
        `correct_bits` where every row has them (the pipeline writes them), else one scan of the run's
        samples. Byte rows, not the (evaluations × bytes) matrix the store's helpers give: a brush of 300
        samples copies 300 rows, each contiguous (6 ms at 19,200 evaluations) instead of gathering 300 bytes
        from every evaluation's row (26 ms)."""

        def read() -> tuple[pd.DataFrame, np.ndarray]:
            with store_errors():
                ev = load(self.run_dir(run), EVALUATIONS_TABLE, [*BIT_KEYS, "n", "accuracy", "correct_bits"])
            bits = ev.column("correct_bits")
            if ev.num_rows and bits.null_count == 0:
                matrix = store.bit_matrix(bits.to_pylist())
                n = ev.column("n").to_numpy()
                want = np.where(n > 0, np.rint(ev.column("accuracy").to_numpy(zero_copy_only=False) * n), 0)
                if np.array_equal(store.row_counts(matrix), want):  # else a stale bitset: trust the samples
                    return ev.select(BIT_KEYS).to_pandas(), np.ascontiguousarray(matrix.T)
            with store_errors():
                rows = (
                    store.samples_dataset(self.run_dir(run), self.meta(run)["num_classes"])
                    .to_table(columns=[*BIT_KEYS, "sample_id", "correct"])
                    .to_pandas()
                )
            keys, matrix = store.scan_bits(rows)
            return keys, np.ascontiguousarray(matrix.T)

        return self._memo(run, "correctness", (), read)

    def correctness_ready(self, run: str) -> bool:
        """Whether the run's correctness matrix is computed, or quick to read (every evaluation
        has its correct_bits, as the footer's statistics say); without a shared cache a
        background process could not hand it over, so it counts as ready (computed inline)."""
        if self.cache is None or self._memoised(run, "correctness"):
            return True
        return self._memo(
            run,
            "has_bits",
            (),
            lambda: store.column_has_no_nulls(self.run_dir(run) / store.EVALUATIONS, "correct_bits"),
        )

    def subset_accuracy(self, run: str, sample_ids: Sequence[int]) -> pd.DataFrame:
        """Accuracy of every evaluation restricted to `sample_ids`: model_id, corruption, severity, accuracy."""
        keys, rows = self.correctness(run)
        ids = np.unique(np.asarray(list(sample_ids), dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < rows.shape[0] * 8)]
        if not len(ids):
            return keys.assign(accuracy=np.nan)
        right = np.zeros(rows.shape[1], np.int64)
        for part in np.array_split(ids, -(-len(ids) // SUBSET_BLOCK)):  # bounded memory for a large selection
            masks = (np.uint8(128) >> (part & 7).astype(np.uint8))[:, None]
            right += ((rows[part >> 3] & masks) != 0).sum(axis=0, dtype=np.int64)
        return keys.assign(accuracy=right / len(ids))

    def margin_change(self, run: str, model_id: str) -> dict:
        """Fig. 10's density of a model (pipeline.store.margin_change_summary), memoised: from its
        clean file's footer where the pipeline wrote it for the model's current sets (one footer
        read), else computed from the margins of every evaluation file of the model."""
        self.check_model(run, model_id)

        def read() -> dict:
            sets = self._corrupted_sets(run, model_id)
            if not sets:
                return store.margin_change_summary(np.empty(0))
            files = self.index(run, model_id).files.get(store.CLEAN_SET, [])
            pairs = [(es.corruption, es.severity) for es in sets]
            stored = store.stored_margin_change(files[0], pairs) if [f.stem for f in files] == [store.CLEAN] else None
            return stored or store.margin_change_summary(self.margin_changes(run, model_id))

        return self._memo(run, "margin_change", (model_id,), read)

    def margin_changes(self, run: str, model_id: str) -> np.ndarray:
        """Relative margin change of every sample under every corrupted version, trimmed 0.5 %
        each side, from the files (not memoised: margin_change() keeps their summary); reads two
        columns of this model's files only."""
        self.check_model(run, model_id)
        sets = self._corrupted_sets(run, model_id)
        if not sets:
            return np.empty(0)
        index, num_classes = self.index(run, model_id), self.meta(run)["num_classes"]
        with store_errors(), ThreadPoolExecutor(4) as pool:  # pyarrow reads without the GIL
            tables = list(
                pool.map(
                    lambda es: read_samples(index, es, ["sample_id", "margin"], num_classes),
                    [store.CLEAN_SET, *sets],
                )
            )
        return store.margin_change_values(tables[0], tables[1:])

    def _corrupted_sets(self, run: str, model_id: str) -> list[EvalSet] | None:
        """The model's corrupted evaluation sets, from evaluations.parquet; None without a clean one."""
        ev = self.evaluations(run)
        mine = ev[ev["model_id"] == model_id]
        if not (mine["corruption"] == store.CLEAN).any():
            return None
        return [EvalSet(c, int(s)) for c, s in zip(mine["corruption"], mine["severity"]) if c != store.CLEAN]

    def table1(self, run: str) -> pd.DataFrame:
        """Pearson correlation of per-sample robustness with the clean angle, length and margin, per model."""

        def read() -> pd.DataFrame:
            with store_errors():
                return run_table1(self.run_dir(run)).rename_axis("model_id").reset_index()

        return self._memo(run, "table1", (), read)

    def sensitivity(self, run: str) -> pd.DataFrame:
        """Per-layer sensitivity: one row per single-layer model (pipeline.store.populations)."""

        def read() -> pd.DataFrame:
            with store_errors():
                return store.run_sensitivity(self.run_dir(run))

        return self._memo(run, "sensitivity", (), read)

    def pie(self, run: str, model_id: str) -> store.PieResult:
        """The pruning-identified exemplars of the population of pruned model `model_id`."""
        self.check_model(run, model_id)

        def read() -> store.PieResult:
            with store_errors():
                return store.run_pie(self.run_dir(run), model_id)

        return self._memo(run, "pie", (model_id,), read)

    def angle_summary(self, run: str) -> pd.DataFrame:
        """Fig. 3's numbers per model: dimension, kind and mean ± std angles of the clean samples."""

        def read() -> pd.DataFrame:
            with store_errors():
                return run_angle_summary(self.run_dir(run))

        return self._memo(run, "angle_summary", (), read)

    def similarity(self, run: str, corruption: str = store.CLEAN, severity: int = 0) -> Similarity:
        """Prediction agreement and linear CKA of every pair of models on one evaluation set (a read
        of every model's predictions and features on it: memoised per run version)."""
        evalset = EvalSet(corruption, int(severity))

        def read() -> Similarity:
            with store_errors():
                return run_similarity(self.run_dir(run), evalset)

        return self._memo(run, "similarity", (evalset.name,), read)

    def similarity_embedding(self, run: str, corruption: str, severity: int, measure: str) -> pd.DataFrame:
        """The MDS embedding of the models by `measure` (agreement or cka): model_id, x, y (memoised)."""

        def embed() -> pd.DataFrame:
            with store_errors():
                ids, xy = self.similarity(run, corruption, severity).embedding(measure)
            return pd.DataFrame({"model_id": ids, "x": xy[:, 0], "y": xy[:, 1]})

        return self._memo(run, "similarity_embedding", (corruption, int(severity), measure), embed)

    def attribution_methods(self, run: str) -> list[str]:
        """The attribution methods with maps in this run, in run.json's order (none: the run has no maps)."""

        def read() -> list[str]:
            models = attribution_models(self.run_dir(run))
            if not models:
                return []
            with store_errors():
                found = set(read_attributions(self.run_dir(run), models[0], ["method"]).column("method").to_pylist())
            listed = (self.meta(run).get("attribution") or {}).get("methods") or []
            return [m for m in listed if m in found] + sorted(found - set(listed))

        return self._memo(run, "attribution_methods", (), read)

    def attribution_maps(self, run: str, model_id: str, method: str, corruption: str, severity: int) -> pd.DataFrame:
        """One model's maps of one method on one evaluation set: sample_id, target, map (an H×W
        array), spearman, iou_top10, by sample id; the clean maps when the set has none; empty
        when the model has no maps."""
        self.check_model(run, model_id)

        def read() -> pd.DataFrame:
            with store_errors():
                shape = attribution_shape(self.meta(run))
                df = read_attributions(self.run_dir(run), model_id).to_pandas()
            df = df[df["method"] == method]
            if shape is None or df.empty:
                return df.iloc[0:0].drop(columns=["method"])
            wanted = (df["corruption"] == corruption) & (df["severity"] == int(severity))
            df = df[wanted] if wanted.any() else df[df["corruption"] == store.CLEAN]
            maps = [np.asarray(m, np.float32).reshape(shape) for m in df["map"]]
            return df.drop(columns=["method"]).assign(map=maps).sort_values("sample_id", ignore_index=True)

        return self._memo(run, "attribution_maps", (model_id, method, corruption, int(severity)), read)

    def attribution_drift(self, run: str) -> pd.DataFrame:
        """Every map's drift against its parent's, with the model's method, variant and sparsity:
        model_id, sample_id, corruption, severity, method (the attribution's), spearman, iou_top10,
        pruning, schedule, steps, finetune_epochs, sparsity, scope, replicate. Empty when the run has no maps."""

        def read() -> pd.DataFrame:
            cols = ["sample_id", "corruption", "severity", "method", "spearman", "iou_top10"]
            parts = []
            with store_errors():
                for mid in attribution_models(self.run_dir(run)):
                    t = read_attributions(self.run_dir(run), mid, cols).to_pandas()
                    parts.append(t.assign(model_id=mid))
            models = self.models(run)[
                ["model_id", "method", "schedule", "steps", "finetune_epochs", "sparsity", "scope", "replicate"]
            ]
            if not parts:
                return pd.DataFrame(columns=["model_id", *cols, "pruning", *models.columns[2:]])
            df = pd.concat(parts, ignore_index=True)
            return df.merge(models.rename(columns={"method": "pruning"}), on="model_id", how="inner")

        return self._memo(run, "attribution_drift", (), read)

    def images(
        self, run: str, sample_ids: Sequence[int], corruption: str = store.CLEAN, severity: int = 0
    ) -> tuple[dict[int, bytes], bool]:
        """PNG bytes of samples as the model saw them, and whether they are the corrupted version.

        Corrupted versions come from the run's cache of generated sets (`corrupted/<set>.npy`);
        without it (official CIFAR-10-C files were used) the clean images are returned.
        """
        run_dir = self.run_dir(run)
        ids = [int(i) for i in sample_ids]
        if corruption != store.CLEAN:
            ev = self.evaluations(run)
            if not ((ev["corruption"] == corruption) & (ev["severity"] == int(severity))).any():
                raise StoreError(
                    f"run {run!r} has no evaluation set {EvalSet(corruption, severity).name}",
                    "pick an evaluation set from the evaluation table",
                )
            cached = store.corrupted_path(run_dir, EvalSet(corruption, severity))
            if cached.is_file():
                arr = np.load(cached, mmap_mode="r")
                return {i: _png(np.asarray(arr[i])) for i in ids if 0 <= i < len(arr)}, True
        with store_errors():
            t = store.read_table(
                run_dir / IMAGES_TABLE.path, columns=["sample_id", "png"], filter=pads.field("sample_id").isin(ids)
            )
            t = conform(t, IMAGES_TABLE, ["sample_id", "png"], where=IMAGES_TABLE.path)[0]
        return dict(zip(t.column("sample_id").to_pylist(), t.column("png").to_pylist())), False


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
    return buf.getvalue()
