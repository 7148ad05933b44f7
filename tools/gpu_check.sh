#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one short run (CI has no GPU; these tests skip there).
#
#   tools/gpu_check.sh [OUT_DIR]        # default: $OUT if set (the device tool's output folder), else gpu_check_out
#
# Uses the python on PATH (PYTHON overrides), which must have torch with CUDA; gsplat, onnxruntime-gpu and
# tensorrt are each optional: what is missing is reported and its checks skip. The package runs from this
# checkout (PYTHONPATH), nothing is installed. Writes env.txt, pytest.txt, bench_encoder.txt,
# bench_render.txt and parity.txt to OUT_DIR and prints a summary. Each step has its own time limit, so
# one hanging step cannot eat the machine's budget: at most ~9.5 minutes in all (the device tool allows 10
# a command), e.g.  run(command="tools/gpu_check.sh", timeout_s=600).
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/summary.txt"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GSSPLAT_CACHE_DIR="$OUT_DIR/cache"

step() {  # step NAME SECONDS CMD...: run with a time limit, log to OUT_DIR/NAME.txt, report the exit code
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT_DIR/$name.txt" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT_DIR/summary.txt"
    tail -n 5 "$OUT_DIR/$name.txt"
}

step env 30 "$PY" - <<'PY'
import importlib, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
for name in ("gsplat", "onnxruntime", "tensorrt", "onnx", "numba", "rclpy"):
    try:
        mod = importlib.import_module(name)
        extra = mod.get_available_providers() if name == "onnxruntime" else ""
        print(name, getattr(mod, "__version__", "?"), extra)
    except Exception as exc:  # report and go on: each missing piece only skips its checks
        print(name, "MISSING:", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
PY
# the tests that only run with CUDA (gsplat backend, TensorRT engines, CUDA runtimes); the rest is CI's
step pytest 200 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_render_gsplat.py tests/test_runtime_tensorrt.py \
    tests/test_runtime_onnx.py tests/test_export.py -k "gsplat or tensorrt or cuda or fp16"
step parity 60 "$PY" -m gssplat_ros.cli export parity --views 4 --width 160 --height 120 --fp16
step bench_render 90 "$PY" -m gssplat_ros.cli bench render --backend gsplat
step bench_encoder 180 "$PY" -m gssplat_ros.cli bench encoder --device cuda --runtime torch onnxruntime tensorrt \
    --views 2 4 8 --sizes 160x120 320x240 --runs 5
cat "$OUT_DIR/summary.txt"
