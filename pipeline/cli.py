"""`python -m pipeline`: run, ls, validate, report, paper.

Every user error ends in one message naming the problem and the fix, and a non-zero exit
code; never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PruneScopeError

if TYPE_CHECKING:
    from pipeline.config import ExecutionConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_store() -> Path:
    """`PRUNESCOPE_STORE`, or `cache/store/` in the repository."""
    return Path(os.environ.get("PRUNESCOPE_STORE", REPO_ROOT / "cache" / "store"))


def override_execution(execution: ExecutionConfig, given: dict[str, Any]) -> ExecutionConfig:
    """The config's [execution] with the command line's settings (`given`) over it: `--workers` or
    `--scheduler` alone mean Dask, each replaces the other, and with `--executor` the config's
    workers and scheduler stay only where that executor takes them (`--executor serial` on a
    config of worker processes runs serially)."""
    from pipeline.config import execution_config

    merged = {**dataclasses.asdict(execution), **given}
    if "executor" not in given and ("workers" in given or "scheduler" in given):
        merged["executor"] = "dask"
    if "workers" in given:
        merged["scheduler"] = None
    if "scheduler" in given:
        merged["workers"] = None
    if "executor" in given:
        takes = {"serial": (), "processes": ("workers",), "dask": ("workers", "scheduler")}.get(merged["executor"], ())
        merged.update({k: None for k in ("workers", "scheduler") if k not in given and k not in takes})
    return execution_config(**merged)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.runner import build_run

    cfg = load_config(args.config, args.corrupted_root, args.set)
    given = {
        k: getattr(args, k) for k in ("executor", "workers", "scheduler", "threads") if getattr(args, k) is not None
    }
    if given:  # the command line overrides the config's [execution] table
        cfg = dataclasses.replace(cfg, execution=override_execution(cfg.execution, given))
    summary = build_run(cfg, Path(args.store), force=args.force)
    print(summary.line())
    for note in summary.warnings:
        print(f"warning: {note}", file=sys.stderr)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from pipeline import store
    from pipeline.checks import check_store_dir

    runs = store.list_runs(check_store_dir(Path(args.store)))
    if not runs:
        print(f"no runs in {args.store} (build one with `python -m pipeline run configs/demo.toml`)")
        return 0
    for name in runs:
        run_dir = Path(args.store) / name
        try:
            meta = store.read_run_json(run_dir)
            n_models = (
                store.read_table(run_dir / store.MODELS, ["model_id"]).num_rows
                if (run_dir / store.MODELS).is_file()
                else 0
            )
            print(f"{name:24s} {meta.get('dataset', '?'):12s} {n_models:4d} models  created {meta.get('created', '?')}")
        except PruneScopeError as exc:
            print(f"{name:24s} unreadable: {exc.problem}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.store import check_run

    problems = check_run(Path(args.run_dir))
    errors = [p for p in problems if p.error]
    warnings = [p for p in problems if not p.error]
    for title, found in (("error", errors), ("warning", warnings)):
        if found:
            print(f"{args.run_dir}: {len(found)} {title}(s)")
            for p in found:
                print(f"  - {p.problem}" + (f" (fix: {p.fix})" if p.fix and title == "error" else ""))
    if errors:
        return 1
    print(
        f"{args.run_dir}: valid (store contract v1)" + (", read with the defaults and casts above" if warnings else "")
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.report import pie_report, render_report, render_similarity, sensitivity_report, similarity_json

    run_dir = Path(args.run_dir)
    if args.json and not (args.sensitivity or args.pie or args.similarity):
        raise PruneScopeError(
            "--json emits the table of --sensitivity, --pie or --similarity", "add one of them (or drop --json)"
        )
    if args.similarity:
        evalset = args.evaluation_set
        print(json.dumps(similarity_json(run_dir, evalset)) if args.json else render_similarity(run_dir, evalset))
        return 0
    for flag, make, key in ((args.sensitivity, sensitivity_report, "sensitivity"), (args.pie, pie_report, "pie")):
        if flag:
            table, text = make(run_dir)
            out = {"run": run_dir.name, key: json.loads(table.to_json(orient="records"))}
            print(json.dumps(out, indent=1) if args.json else text)
            return 0
    print(render_report(run_dir))
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from pipeline.paper import render_paper

    run = Path(args.run)
    print(render_paper(run if run.is_dir() else Path(args.store) / args.run))
    return 0


def cmd_corruptions(args: argparse.Namespace) -> int:
    from pipeline.corruptions import CORRUPTION_NAMES, CorruptionOptions
    from pipeline.datasets import load_dataset
    from pipeline.errors import PruneScopeError
    from pipeline.preview import write_preview

    if args.preview is None:
        print("\n".join(CORRUPTION_NAMES))
        return 0
    data = load_dataset(args.dataset, args.root)
    if not 0 <= args.sample < len(data.test_images):
        raise PruneScopeError(
            f"sample {args.sample} is outside the test set (0..{len(data.test_images) - 1})", "pick another --sample"
        )
    out = write_preview(
        Path(args.preview), data.test_images[args.sample], args.sample, CorruptionOptions(frost_dir=args.frost_dir)
    )
    print(f"contact sheet of {args.dataset} test sample {args.sample}: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import EXECUTORS

    parser = argparse.ArgumentParser(prog="python -m pipeline", description="PruneScope's offline pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="build or resume a run from a TOML config")
    p.add_argument("config")
    p.add_argument("--store", default=str(default_store()), help="store folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="delete an existing run of that name and rebuild it")
    p.add_argument(
        "--corrupted-root",
        help="folder of the official CIFAR-10-C files (<name>.npy, labels.npy) to read instead of generating",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (dotted key, TOML value; repeatable): --set train.epochs=1 "
        "--set prune.2.sparsity=[0.5] (a number picks a [[models]]/[[prune]] entry; else every entry)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="how to run the units: serial (default), processes (a pool of local worker processes), dask",
    )
    p.add_argument(
        "--workers", type=int, help="N worker processes: a local Dask cluster (or a pool, with --executor processes)"
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask cluster (tcp://HOST:8786)")
    p.add_argument("--threads", type=int, help="torch CPU threads per unit (default: this machine's)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("ls", help="list the runs of a store")
    p.add_argument("--store", default=str(default_store()))
    p.set_defaults(func=cmd_ls)
    p = sub.add_parser("validate", help="check a run folder against the store contract")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("report", help="accuracy per model and evaluation set, and robustness correlations")
    p.add_argument("run_dir")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--sensitivity", action="store_true", help="per-layer sensitivity: layer × sparsity tables")
    what.add_argument("--pie", action="store_true", help="pruning-identified exemplars of every pruned population")
    what.add_argument(
        "--similarity", action="store_true", help="prediction agreement and linear CKA of every pair of models"
    )
    p.add_argument("--evaluation-set", default="clean", help="with --similarity: clean (default) or e.g. fog-3")
    p.add_argument(
        "--json", action="store_true", help="emit the table as JSON (with --sensitivity, --pie or --similarity)"
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("paper", help="the paper's quantitative claims, checked on a run: which reproduce")
    p.add_argument("run", help="a run folder, or the name of a run in --store")
    p.add_argument("--store", default=str(default_store()))
    p.set_defaults(func=cmd_paper)
    p = sub.add_parser(
        "corruptions", help="list the corruptions, or draw a contact sheet of one image under all of them"
    )
    p.add_argument("--preview", metavar="FILE.png", help="write the contact sheet here")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--root", default=None, help="data folder (for mnist, cifar10, imagefolder)")
    p.add_argument("--sample", type=int, default=0, help="test sample index")
    p.add_argument("--frost-dir", default=None, help="folder of frost photos (default: procedural texture)")
    p.set_defaults(func=cmd_corruptions)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PruneScopeError as exc:
        print(f"error: {exc.problem}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was finished is kept; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, and keep Python's exit-time flush
        # of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, RuntimeError) as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        if _disk_full(exc):
            print(f"error: the disk is full (while writing{where or ' the run'})", file=sys.stderr)
            print("  fix: free some space and run the same command again: finished parts are kept", file=sys.stderr)
        elif isinstance(exc, OSError):
            print(f"error: cannot access{where}: {exc.strerror or exc}", file=sys.stderr)
            print("  fix: check the path and its permissions, then run the same command again", file=sys.stderr)
        else:
            raise
        return 2


def _disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk is full (torch's checkpoint writer says only "file write failed")."""
    text = str(exc)
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        s in text for s in ("No space left on device", "Disk quota exceeded", "file write failed")
    )
