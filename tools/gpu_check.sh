#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one short run (CI has no GPU; these tests skip there).
#
#   tools/gpu_check.sh [OUT_DIR] [SCENES]   # OUT_DIR default: $OUT if set (the device tool's output folder),
#                                           # else gpu_check_out; SCENES: generated 320x240 scenes for training
#
# Uses the python on PATH (PYTHON overrides), which must have torch with CUDA; gsplat, onnxruntime-gpu and
# tensorrt are each optional: what is missing is reported and its checks skip. The package runs from this
# checkout (PYTHONPATH), nothing is installed. gsplat compiles its CUDA sources on first use
# (TORCH_CUDA_ARCH_LIST=9.0 for the H200; set it for another card): that compile starts first, in the
# background, while the encoder benchmark (no gsplat) runs. Then, by priority: renderer parity, keyframe-update
# latency, training throughput, the renderer benchmark, the CUDA-only tests. Every step has its own limit and
# the whole script a deadline (DEADLINE_S, default 420 s), so one hang cannot eat the machine's budget.
# Writes summary.txt, env.txt, parity.txt, bench.txt, latency.txt, train.txt, pytest.txt (and profile.txt
# when the latency goal is missed) to OUT_DIR: at most 8 files, as the device tool brings back.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
SCENES="${2:-}"
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/summary.txt"
PY="${PYTHON:-python3}"
DEADLINE_S="${DEADLINE_S:-420}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GSSPLAT_CACHE_DIR="/tmp/gssplat_cache"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}"

step() {  # step FILE SECONDS CMD...: run with min(SECONDS, time to the deadline), append to OUT_DIR/FILE.txt
    local file=$1 limit=$2; shift 2
    local left=$((DEADLINE_S - SECONDS))
    ((left < limit)) && limit=$left
    if ((limit < 10)); then
        echo "$file: skipped, ${left} s to the deadline" | tee -a "$OUT_DIR/summary.txt"
        return
    fi
    local t0=$SECONDS
    echo "### $*" >>"$OUT_DIR/$file.txt"
    timeout "$limit" "$@" >>"$OUT_DIR/$file.txt" 2>&1
    local rc=$?
    echo "$file ($1 ${2:-} ${3:-}): exit $rc in $((SECONDS - t0)) s (limit $limit)" | tee -a "$OUT_DIR/summary.txt"
    tail -n 3 "$OUT_DIR/$file.txt"
}

# 1. gsplat's JIT compile, in the background: import it and rasterise one Gaussian
compile_t0=$SECONDS
timeout 300 "$PY" tools/gpu_env.py >"$OUT_DIR/env.txt" 2>&1 &
compile_pid=$!
# training scenes, generated here in the background too unless given
if [[ -z "$SCENES" ]]; then
    SCENES=/tmp/gpu_check_scenes
    timeout 200 "$PY" -m gssplat_ros.cli data generate --out "$SCENES" --scenes 3 --frames 14 --size 320x240 \
        --jobs 3 --seed 11 >>"$OUT_DIR/train.txt" 2>&1 &
    data_pid=$!
fi

# 2. without gsplat, while it compiles: the torch encoder on CUDA
step bench 150 "$PY" -m gssplat_ros.cli bench encoder --device cuda --runtime torch --views 2 4 8 \
    --sizes 160x120 320x240 --runs 5
wait "$compile_pid"
echo "gsplat compile step: exit $? after $((SECONDS - compile_t0)) s (started at 0, in the background)" \
    | tee -a "$OUT_DIR/summary.txt"
grep -E "gsplat|gpu" "$OUT_DIR/env.txt" | tee -a "$OUT_DIR/summary.txt"

# 3. renderer parity, keyframe latency, training, renderer benchmark, tests
step parity 90 "$PY" tools/gpu_parity.py
step latency 100 "$PY" tools/gpu_latency.py --profile-dir "$OUT_DIR"
[[ -n "${data_pid:-}" ]] && { wait "$data_pid"; echo "scene generation: exit $? at $SECONDS s" | tee -a "$OUT_DIR/summary.txt"; }
if [[ -d "$SCENES" ]]; then
    step train 80 "$PY" tools/gpu_train.py --root "$SCENES" --presets tiny --steps 40
    step train 90 "$PY" tools/gpu_train.py --root "$SCENES" --presets paper --steps 30
fi
step bench 60 "$PY" -m gssplat_ros.cli bench render --backend gsplat --counts 50000 131072 500000 \
    --sizes 160x120 320x240 640x480
step pytest 100 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_render_gsplat.py tests/test_runtime_tensorrt.py \
    tests/test_runtime_onnx.py tests/test_export.py tests/test_train.py -k "gsplat or tensorrt or cuda or fp16"
echo "total: $SECONDS s" | tee -a "$OUT_DIR/summary.txt"
cat "$OUT_DIR/summary.txt"
