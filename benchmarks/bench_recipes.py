"""Time per unit of the study recipes on this machine, and each recipe's projected wall time.

For every architecture of configs/paper_*.toml, structured_*.toml and sweetspot_*.toml it times,
on random tensors of the data set's size, a few SGD steps (forward, backward, update) and a few
evaluation batches (forward with the feature hook and the metrics kernel), and extrapolates:
one training epoch (50,000 CIFAR-10 / 60,000 MNIST images) and one evaluation set (10,000
images). It times the 19 corruptions at severity 3 on a few images and extrapolates to the 95
sets of 10,000 a run generates (zero with --corrupted-root). Then it counts each recipe's units
with pipeline/plan.py and adds them up: dense training epochs, fine-tuning epochs (per step
when iterative), MPT score-training epochs (timed as SGD steps: the same forward and backward
through the network), Taylor's scoring batches, evaluations, corruption generation. Unit
bookkeeping (Parquet writes, robustness) is left out: milliseconds per unit.

`--paper-output` also builds configs/paper_cifar10.toml shrunk as tests/test_recipes.py does on
tiny CIFAR-format files and prints what `python -m pipeline paper RUN` prints at the end.
Prints Markdown (README "Reproduce the papers").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.config import RunConfig, load_config
from pipeline.corruptions import CORRUPTION_NAMES, corrupt
from pipeline.metrics import sample_metrics
from pipeline.models import build_model, final_linear
from pipeline.plan import EVAL, MODEL, plan_run
from pipeline.training import Normalizer, extract, resolve_device

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = ("paper_cifar10", "structured_cifar10", "sweetspot_cifar10", "paper_mnist")
# (train images, test images, (H, W, C)) of the full data sets
SIZES = {"cifar10": (50_000, 10_000, (32, 32, 3)), "mnist": (60_000, 10_000, (28, 28, 1))}


@dataclass(frozen=True)
class ArchTimes:
    """Seconds per image: one SGD step's share (train) and one evaluation's share (eval)."""

    train: float
    eval: float


def time_arch(
    arch: str, shape: tuple[int, int, int], batches: int, sizes: tuple[int, int], device: torch.device
) -> ArchTimes:
    """Per-image seconds of SGD steps and evaluation (batch sizes `sizes`), `batches` each after a warm-up."""
    h, w, c = shape
    torch.manual_seed(0)
    model = build_model(arch, None, {}, c, (h, w), 10).to(device)
    norm = Normalizer((0.5,) * c, (0.25,) * c)
    rng = np.random.default_rng(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(n: int) -> None:
        x = norm(rng.integers(0, 256, (n, h, w, c), dtype=np.uint8), device)
        y = torch.as_tensor(rng.integers(0, 10, n)).to(device)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    def evaluate(n: int) -> None:
        images = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
        feats = extract(model, head, images, norm, device, n)
        sample_metrics(feats, head.weight.detach(), head.bias.detach(), torch.as_tensor(rng.integers(0, 10, n)))

    def per_image(fn, n: int) -> float:
        fn(n)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(batches):
            fn(n)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / (batches * n)

    model.train()
    train = per_image(step, sizes[0])
    _, head = final_linear(model, norm(np.zeros((2, h, w, c), np.uint8), device))
    return ArchTimes(train, per_image(evaluate, sizes[1]))


def time_corruptions(shape: tuple[int, int, int], n: int) -> float:
    """Seconds per image per corruption set: all 19 corruptions at severity 3 on `n` random images."""
    h, w, c = shape
    images = np.random.default_rng(0).integers(0, 256, (n, h, w, c), dtype=np.uint8)
    t = time.perf_counter()
    for name in CORRUPTION_NAMES:
        corrupt(images, name, 3, np.arange(n))
    return (time.perf_counter() - t) / (n * len(CORRUPTION_NAMES))


def project(cfg: RunConfig, times: dict[str, ArchTimes], corrupt_s: float, official: bool) -> dict[str, float]:
    """Seconds of each kind of work in the recipe's plan, summed serially, plus the counts."""
    n_train, n_test, _ = SIZES[cfg.dataset.name]
    out = {"models": 0.0, "evals": 0.0, "train": 0.0, "finetune": 0.0, "mpt": 0.0, "taylor": 0.0, "eval": 0.0}
    for unit in plan_run(cfg).units:
        if unit.kind not in (MODEL, EVAL):
            continue
        t = times[str(unit.model.base.arch)]
        spec = unit.model.spec
        if unit.kind == EVAL:
            out["evals"] += 1
            out["eval"] += n_test * t.eval
            continue
        out["models"] += 1
        epoch = n_train * t.train
        if spec is None:
            out["train"] += cfg.train.epochs * epoch
        elif spec.method == "mpt":
            out["mpt"] += cfg.mpt.epochs * epoch
        else:
            out["finetune"] += spec.steps * spec.finetune_epochs * epoch
            if spec.method == "taylor":
                out["taylor"] += spec.steps * spec.taylor_batches * cfg.finetune.batch_size * t.train
    sets = len(cfg.evaluation.evalsets()) - 1
    out["corrupt"] = 0.0 if official and cfg.dataset.name == "cifar10" else sets * n_test * corrupt_s
    out["total"] = sum(out[k] for k in ("train", "finetune", "mpt", "taylor", "eval", "corrupt"))
    return out


def hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def paper_output() -> str:
    """`python -m pipeline paper` on configs/paper_cifar10.toml shrunk as tests/test_recipes.py runs it."""
    from pipeline.cli import main
    from pipeline.paper import render_paper
    from tests.test_datasets import make_cifar
    from tests.test_recipes import SHRINK, SMALL

    with tempfile.TemporaryDirectory() as tmp:
        make_cifar(Path(tmp) / "data", per_batch=8)
        sets = [f"dataset.root={Path(tmp) / 'data'}", *SMALL, *SHRINK["paper_cifar10"]]
        args = ["run", str(CONFIGS / "paper_cifar10.toml"), "--store", str(Path(tmp) / "store"), "--threads", "1"]
        assert main(args + [a for s in sets for a in ("--set", s)]) == 0
        return render_paper(Path(tmp) / "store" / "paper-cifar10")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=2, help="timed batches per measurement (after a warm-up)")
    ap.add_argument("--train-batch", type=int, default=32, help="images per timed SGD step")
    ap.add_argument("--eval-batch", type=int, default=128, help="images per timed evaluation batch")
    ap.add_argument("--corrupt-images", type=int, default=64, help="images per corruption timing")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paper-output", action="store_true", help="also print `pipeline paper` on a tiny run")
    args = ap.parse_args()
    device = resolve_device(args.device)
    cfgs = {r: load_config(CONFIGS / f"{r}.toml") for r in RECIPES}
    archs = {(str(m.arch), c.dataset.name) for c in cfgs.values() for m in c.models}
    load = os.getloadavg()[0]
    print(f"device: {device} ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores, load {load:.1f})\n")
    times = {}
    print("| architecture | SGD step, per image | one training epoch | one evaluation set (10,000) |")
    print("|---|---|---|---|")
    for arch, ds in sorted(archs):
        n_train, n_test, shape = SIZES[ds]
        t = times[arch] = time_arch(arch, shape, args.batches, (args.train_batch, args.eval_batch), device)
        print(
            f"| `{arch}` ({ds}) | {t.train * 1e3:.2f} ms | {hours(n_train * t.train)} "
            f"({n_train:,} images) | {hours(n_test * t.eval)} |"
        )
    corrupt_s = {ds: time_corruptions(SIZES[ds][2], args.corrupt_images) for ds in ("cifar10", "mnist")}
    print(
        "\ngenerating the 95 corrupted sets of 10,000 images: "
        + ", ".join(f"{ds} {hours(95 * 10_000 * s)}" for ds, s in corrupt_s.items())
        + " (none when reading the official CIFAR-10-C files)\n"
    )
    print(
        "| recipe | models | evaluations | dense training | fine-tuning | MPT | evaluation "
        "| corruptions | total, serial |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe, cfg in cfgs.items():
        for official in (False, True) if cfg.dataset.name == "cifar10" and cfg.evaluation.corruptions else (False,):
            p = project(cfg, times, corrupt_s[cfg.dataset.name], official)
            label = f"`{recipe}`" + (" (official CIFAR-10-C)" if official else "")
            print(
                f"| {label} | {p['models']:.0f} | {p['evals']:.0f} | {hours(p['train'])} "
                f"| {hours(p['finetune'] + p['taylor'])} | {hours(p['mpt'])} | {hours(p['eval'])} "
                f"| {hours(p['corrupt'])} | **{hours(p['total'])}** |"
            )
    print(
        f"\n{args.batches} timed batches per measurement (SGD batch {args.train_batch}, evaluation batch "
        f"{args.eval_batch}) after one warm-up, "
        f"extrapolated; corruptions timed on {args.corrupt_images} images per corruption at severity 3."
    )
    if args.paper_output:
        print("\n" + paper_output())


if __name__ == "__main__":
    main()
