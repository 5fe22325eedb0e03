#!/usr/bin/env bash
# The GPU checks, as one run on a machine with an NVIDIA GPU, CuPy and PyTorch (CUDA):
#
#     bash benchmarks/gpu_check.sh [OUTDIR]          # QUICK=1 for a tiny dry run
#
# 1. what the machine is (GPU, driver, Python, NumPy, CuPy, torch);
# 2. tests/test_device.py: its real-GPU tests must run here, not skip (-rs lists any skip);
#    if it fails, once more with warnings not turned into errors, to tell the two apart;
# 3. python -m benchmarks --gpu on the MLPs and the conv nets, 1 BLAS thread;
# 4. a DeepConvNet training run on MNIST on the GPU (docs/results.md's cosine run), when
#    CHAINRULE_DATA (default: .gpu/data) holds MNIST;
# 5. only when asked for: the whole test suite on that machine's Python and NumPy (suite).
#
# STAGES picks stages (default: tests,benchmarks,profile,train; suite runs in parallel with
# pytest-xdist when the machine has it).
#
# At most 8 files land in OUTDIR (machine.txt, stages.txt and a log per stage).
# chainrule is installed from this checkout into a scratch folder (no index, no dependencies:
# the machine's NumPy and CuPy are used) and put first on PYTHONPATH. Each stage has its own
# time limit and its own log in OUTDIR; the stages run even when one before them failed.
set -u
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
site=$(mktemp -d)
py=${PYTHON:-python3}
"$py" -m pip install -q --no-deps --no-build-isolation --no-index --target "$site" . \
    >"$site.log" 2>&1 || { echo "install failed:"; tail -20 "$site.log"; }
export PYTHONPATH="$site:$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CHAINRULE_DATA=${CHAINRULE_DATA:-$root/.gpu/data} CHAINRULE_OFFLINE=1
quick=${QUICK:-0}
stages=",${STAGES:-tests,benchmarks,profile,train},"
status=()

stage() {  # stage NAME SECONDS COMMAND...: run it with a limit, log it, remember how it ended
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n "${TAIL:-25}" "$out/$name.log"
    status+=("$name rc=$rc $((SECONDS - start))s")
    return $rc
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
        --format=csv 2>&1 || echo "nvidia-smi: not available"
    "$py" - <<'EOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "devices", cupy.cuda.runtime.getDeviceCount(),
          "cuda runtime", cupy.cuda.runtime.runtimeGetVersion())
except Exception as exc:
    print("cupy: not usable:", type(exc).__name__, exc)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except Exception as exc:
    print("torch: not usable:", type(exc).__name__, exc)
EOF
} 2>&1 | tee "$out/machine.txt"

wanted() { [[ $stages == *",$1,"* ]]; }

tests=(tests/test_device.py tests/test_benchmarks.py::test_convnet_gpu_rows_run_the_same_steps_on_the_device)
if wanted tests && ! stage tests 240 "$py" -m pytest -q -rs -p no:cacheprovider "${tests[@]}"; then
    TAIL=40 stage tests-no-warning-errors 240 \
        "$py" -m pytest -q -rs -p no:cacheprovider -W default "${tests[@]}"
fi

if [ "$quick" = 1 ]; then
    bench=(--quick --no-memory)
    train=(--iterations 20 --eval-subset 500)
else
    bench=(--repeats 5 --no-memory)
    train=(--epochs 12 --schedule cosine)
fi
wanted benchmarks && stage benchmarks 300 "$py" -m benchmarks --gpu --threads 1 \
    --nets small,big,simple-cnn,deep-cnn --rows chainrule-layers,chainrule-autograd,pytorch \
    "${bench[@]}"

steps=$([ "$quick" = 1 ] && echo 2 || echo 20)
wanted profile && stage profile 120 "$py" -m benchmarks.conv_profile --device cuda --steps "$steps"

if ! wanted train; then
    :
elif [ -d "$CHAINRULE_DATA/mnist" ]; then
    stage train-deep-cnn "${TRAIN_LIMIT:-240}" "$py" -m chainrule train --device cuda \
        --model deep-cnn --optimizer adam "${train[@]}" --no-progress
else
    echo "=== no MNIST in $CHAINRULE_DATA: no training run"
fi

if wanted suite; then
    parallel=()
    "$py" -c "import xdist" 2>/dev/null && parallel=(-n "$(nproc)")
    stage suite "${SUITE_LIMIT:-200}" "$py" -m pytest -q -p no:cacheprovider "${parallel[@]}"
fi

echo "=== stages"
printf '%s\n' "${status[@]}" | tee "$out/stages.txt"
