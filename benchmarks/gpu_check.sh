#!/usr/bin/env bash
# The GPU measurements of issue #12 in one run of about five minutes, for a machine lent once:
# a unit's forward + metrics + write rate for vgg16_cifar and resnet18_cifar and the 100-model
# study projected from it (bench_projection), the evaluation overhead (bench_eval_overhead), the
# metrics kernel against X·Wᵀ (bench_metrics), attribution maps per method (bench_attribution,
# Captum), and CIFAR-10-C's generation on the machine's cores (bench_corruptions: numpy, scipy
# and Pillow code, CPU-bound; the GPU takes no part).
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--quick]      (from the repository root)
#
# Needs python3 with torch, numpy, pandas, pyarrow, scipy, tqdm and Pillow; scikit-learn is not
# needed (without it the corruption patches are the six real photos of tests/fixtures). Pure-python wheels in
# $WHEELS (default: wheels/, e.g. captum-0.9.0-py3-none-any.whl) are unpacked onto the path
# first; captum imports matplotlib for its plotting helpers only, so where matplotlib is missing
# an empty stand-in takes its place. A step whose import is missing says so and the run goes on.
# Each step has a hard time limit; everything is printed unbuffered and kept in $OUT/gpu.log
# ($OUT defaults to gpu_check_out/). `--quick` shrinks every step for a try-out on a CPU.
set -uo pipefail

device=cuda
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        *) echo "usage: bash benchmarks/gpu_check.sh [--device cuda|cpu] [--quick]" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
OUT="${OUT:-gpu_check_out}"
WHEELS="${WHEELS:-wheels}"
mkdir -p "$OUT"
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
log="$OUT/gpu.log"
: > "$log"

say() { echo "$*" | tee -a "$log"; }

for whl in "$WHEELS"/*.whl; do
    [ -e "$whl" ] || continue
    "$PYTHON" -m zipfile -e "$whl" "$site" && say "wheel unpacked: $whl"
done
if ! "$PYTHON" -c "import matplotlib" 2>/dev/null; then
    mkdir -p "$site/matplotlib" "$site/mpl_toolkits/axes_grid1"
    for mod in matplotlib/__init__ matplotlib/colors matplotlib/pyplot matplotlib/cm matplotlib/figure \
        matplotlib/image matplotlib/collections matplotlib/axes mpl_toolkits/__init__ mpl_toolkits/axes_grid1/__init__; do
        printf '"""Stand-in: captum names matplotlib objects in its plotting helpers only."""\n\n\ndef __getattr__(name):\n    return type(name, (), {})\n' > "$site/$mod.py"
    done
    say "matplotlib: absent, an empty stand-in for captum's imports"
fi

# step NAME SECONDS COMMAND...: run one measurement under a hard limit, output to the log.
step() {
    local name="$1" limit="$2"
    shift 2
    say ""
    say "=== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    say "=== $name: exit $rc after $((SECONDS - start)) s$([ "$rc" = 124 ] && echo ' (time limit reached)')"
}

has() { "$PYTHON" -c "import $1" 2>/dev/null; }

say "gpu_check: device $device, quick $quick, $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"
"$PYTHON" - <<'PY' 2>&1 | tee -a "$log"
import importlib, platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda available {torch.cuda.is_available()}")
for name in ("numpy", "scipy", "pandas", "pyarrow", "PIL", "skimage", "sklearn", "captum", "dask", "distributed"):
    try:
        print(f"  {name} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as exc:
        print(f"  {name}: absent ({type(exc).__name__})")
PY

if [ "$quick" = 1 ]; then
    step projection 300 "$PYTHON" -m benchmarks.bench_projection --device "$device" --n 64 --batch 32 --corrupt-n 4
    step eval_overhead 120 "$PYTHON" -m benchmarks.bench_eval_overhead --device "$device" --n 128 --batch-size 64 --repeats 1
    step metrics 120 "$PYTHON" -m benchmarks.bench_metrics --device "$device" --n 10000 --repeats 2
    attribution_args=(--samples 2 --repeats 1)
    corruption_args=(--n 20 --processes 2)
else
    step projection 90 "$PYTHON" -m benchmarks.bench_projection --device "$device" --n 10000 --batch 512 --corrupt-n 20
    step eval_overhead 60 "$PYTHON" -m benchmarks.bench_eval_overhead --device "$device" --n 10000 --sets 10 --batch-size 1024 --repeats 3
    step metrics 30 "$PYTHON" -m benchmarks.bench_metrics --device "$device" --repeats 20
    attribution_args=(--samples 64 --repeats 3)
    corruption_args=(--n 2000 --processes "$(nproc)")
fi
if has captum; then
    step attribution 45 "$PYTHON" -m benchmarks.bench_attribution --device "$device" "${attribution_args[@]}"
else
    say "=== attribution: skipped, captum is not importable (put captum-0.9.0-py3-none-any.whl in $WHEELS/)"
fi
step corruptions 60 "$PYTHON" -m benchmarks.bench_corruptions "${corruption_args[@]}"
say ""
say "gpu_check done $(date -u +%FT%TZ); log: $log"
