#!/usr/bin/env bash
# Train on both scene sources on one CUDA GPU, and re-measure the keyframe-update latency on the way.
#
#   tools/gpu_train_sources.sh [OUT_DIR]     # OUT_DIR default: $OUT (the device tool's folder) or gpu_train_out
#
# 1. In the background: gsplat's CUDA compile, and the training data of both sources with randomised
#    appearance (`gssplat data generate --appearance full`, seeds no evaluation set uses).
# 2. Once gsplat is built: tools/gpu_latency.py (predict + render of RGB, labels and depth), GPU idle otherwise.
# 3. Four trainings at once on the one GPU (a tiny model at 160x120 leaves most of an H200 idle), each for
#    TRAIN_MINUTES: config/train/tiny_sensor/9_mixed_sources.yaml from the shipped sensor weights,
#    config/train/tiny_estimated/5_mixed_sources_depth.yaml from the shipped estimated weights, and the two
#    leave-one-source-out runs from scratch (config/train/leave_one_source_out/*.yaml).
# 4. The CUDA-only tests. Each checkpoint comes back as one tar (best + last + log.csv).
# Every step has its own time limit and the whole script a deadline (DEADLINE_S).
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_train_out}}"
mkdir -p "$OUT_DIR"
: >"$OUT_DIR/summary.txt"
PY="${PYTHON:-python3}"
DEADLINE_S="${DEADLINE_S:-420}"
TRAIN_MINUTES="${TRAIN_MINUTES:-3.0}"
SCENES="${SCENES:-48}"
DATA=/tmp/gssplat_data
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GSSPLAT_CACHE_DIR=/tmp/gssplat_cache
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}"
log() { echo "[$SECONDS s] $*" | tee -a "$OUT_DIR/summary.txt"; }

# 1. compile and data, in the background
timeout 240 "$PY" tools/gpu_env.py >/tmp/gpu_env.txt 2>&1 &
compile_pid=$!
timeout 200 "$PY" -m gssplat_ros.cli data generate --source procedural --appearance full --out "$DATA/procedural_full" \
    --scenes "$SCENES" --frames 40 --size 160x120 --seed 7001 --jobs 4 >/tmp/data_procedural.txt 2>&1 &
data_procedural_pid=$!
timeout 200 "$PY" -m gssplat_ros.cli data generate --source meshes --appearance full --out "$DATA/meshes_full" \
    --scenes "$SCENES" --frames 40 --size 160x120 --seed 7002 --jobs 4 >/tmp/data_meshes.txt 2>&1 &
data_meshes_pid=$!
wait "$compile_pid"; log "gsplat compile: exit $?"; cat /tmp/gpu_env.txt >>"$OUT_DIR/summary.txt"

# 2. latency with the GPU to itself (the data workers use only CPU cores)
timeout 75 "$PY" tools/gpu_latency.py --precisions fp32 bf16 --profile-dir /tmp >"$OUT_DIR/latency.txt" 2>&1
log "latency: exit $?"
[[ -f /tmp/profile.txt ]] && cat /tmp/profile.txt >>"$OUT_DIR/latency.txt"
wait "$data_procedural_pid"; log "procedural data: exit $? ($(tail -n 1 /tmp/data_procedural.txt))"
wait "$data_meshes_pid"; log "mesh data: exit $? ($(tail -n 1 /tmp/data_meshes.txt))"
"$PY" - "$DATA" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tools")
from gpu_train import write_splits
for root in Path(sys.argv[1]).iterdir():
    write_splits(root)
PY

# 3. four trainings at once
left=$((DEADLINE_S - SECONDS - 60))
train_limit=$("$PY" -c "print(min(int(${TRAIN_MINUTES} * 60 + 60), ${left}))")
log "training for at most $train_limit s"
run_train() {  # NAME CONFIG OVERRIDES...: one `gssplat train`, its checkpoints in /tmp/train_NAME
    local name=$1 config=$2; shift 2
    timeout "$train_limit" "$PY" -m gssplat_ros.cli train --config "$config" --override \
        "optim.max_minutes=$TRAIN_MINUTES" "out_dir=/tmp/train_$name" "$@" >"/tmp/train_$name.log" 2>&1
    log "train $name: exit $?"
}
run_train mixed config/train/tiny_sensor/9_mixed_sources.yaml "init_from=gssplat_ros/assets/weights/tiny_sensor" \
    "data.root=$DATA/procedural_full" "data.val_root=$DATA/procedural_full" \
    "data.extra=[{root: $DATA/meshes_full, width: 160, height: 120}]" &
p1=$!
run_train depth config/train/tiny_estimated/5_mixed_sources_depth.yaml \
    "init_from=gssplat_ros/assets/weights/tiny_estimated" "model_overrides.depth_encoder=true" \
    "data.root=$DATA/procedural_full" "data.val_root=$DATA/procedural_full" \
    "data.extra=[{root: $DATA/meshes_full, width: 160, height: 120}]" &
p4=$!
run_train loso_procedural config/train/leave_one_source_out/1_procedural_only.yaml \
    "data.root=$DATA/procedural_full" "data.val_root=$DATA/procedural_full" &
p2=$!
run_train loso_meshes config/train/leave_one_source_out/2_meshes_only.yaml \
    "data.root=$DATA/meshes_full" "data.val_root=$DATA/meshes_full" &
p3=$!
wait $p1 $p2 $p3 $p4
for name in mixed depth loso_procedural loso_meshes; do
    { echo "## $name"; grep -v "^\s*$" "/tmp/train_$name.log" | tail -n 6; } >>"$OUT_DIR/train.txt"
    (cd "/tmp/train_$name" 2>/dev/null && tar cf "$OUT_DIR/ckpt_$name.tar" ./*.json ./*.safetensors log.csv 2>/dev/null)
    log "$name: $(($(wc -l <"/tmp/train_$name/log.csv" 2>/dev/null || echo 1) - 1)) logged steps"
done

# 4. CUDA-only tests
limit=$((DEADLINE_S - SECONDS)); ((limit < 30)) && limit=30
timeout "$limit" "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_pipeline.py tests/test_train.py \
    tests/test_render_gsplat.py -k "cuda or gsplat" >"$OUT_DIR/pytest.txt" 2>&1
log "cuda tests: exit $? ($(tail -n 1 "$OUT_DIR/pytest.txt"))"
log "total"
