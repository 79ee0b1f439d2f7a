#!/usr/bin/env bash
# Issue 10, item 10: the CUDA / TensorRT providers and the fp16 variant on a lent GPU machine.
#
#   bash docs/benchmarks/gpu_check.sh prepare   # here, with the package registry reachable
#   bash docs/benchmarks/gpu_check.sh device    # on the device machine ($OUT is set there)
#
# Why two halves and several `run` calls: the device machine reaches no registry, and one call
# carries at most 64 MiB, while onnxruntime-gpu's wheel is ~255 MB (its CUDA provider library
# alone is 284 MB unpacked). `prepare` downloads the wheels for the device's Python (3.12, see
# /work/.library/device/KINDS.md) and splits onnxruntime-gpu into parts of 56 MiB under
# .gpu_carry/ (in .gitignore). Carry one part per `run` call, e.g. with the command
# `ls -l .gpu_carry`: ignored paths a call leaves on the device stay there while the machine is
# warm (30 s), so make the calls back to back. The last call carries the last part and
# .gpu_carry/extra and runs `device`. `prepare` prints the calls.
#
# `device` installs onnxruntime-gpu and the app's missing dependencies into a folder put ahead
# of the image's own packages (numpy, torch, onnx, OpenCV) on PYTHONPATH, exports the random-init tiny model with the image's torch, converts it to fp16, runs
# `bench` with --providers cuda and tensorrt at fp32 and fp16, and `eval --compare` fp16 vs fp32
# on CUDA. A step that fails is logged and the next one runs. Results come back in $OUT (at most
# 8 files): bench_<provider>_<precision>.json, eval_fp16_cuda.json, log.txt.
# DEVICE_PYTHON, SKIP_INSTALL=1 and fewer RUNS / ENCODER_RUNS / IMAGE_RUNS / POINT_RUNS let the
# second half be tried here on CPU (the providers fall back to cpu, and each results file says so).
set -uo pipefail
cd "$(dirname "$0")/../.."
CARRY=.gpu_carry
ORT_GPU="onnxruntime-gpu==1.31.1"  # the newest onnxruntime-gpu on PyPI in 2026-12; CUDA 13 build
PART_MB=56

prepare() {
  set -e
  local pip=${PIP:-.venv/bin/pip}
  local wheel=(--no-deps --only-binary :all: --python-version 3.12 --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64)
  rm -rf "$CARRY" && mkdir -p "$CARRY/extra/wheels" "$CARRY/ort" "$CARRY/extra/images"
  "$pip" download -q "${wheel[@]}" -d "$CARRY/ort" "$ORT_GPU"
  "$pip" download -q "${wheel[@]}" -d "$CARRY/extra/wheels" "pycocotools==2.0.11" \
    "platformdirs==4.14.9" "hydra-core==1.3.8" "omegaconf==2.3.1"  # the versions tests run with
  # sam2, and two of its dependencies, exist as source only: built there with its setuptools
  SAM2_BUILD_CUDA=0 "$pip" download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$CARRY/extra/wheels" sam2==1.1.0 \
    "antlr4-python3-runtime==4.9.3" "iopath==0.1.10"
  cp ../shared/data/images/*.jpg "$CARRY/extra/images/"
  (cd "$CARRY/ort" && sha256sum -- *.whl >../extra/ort.sha256 && split -b "${PART_MB}m" -- *.whl ../part_)
  rm -rf "$CARRY/ort"
  local parts=("$CARRY"/part_*) last
  last=${parts[-1]}
  du -sh "$CARRY"/part_* "$CARRY/extra"
  echo "device calls, back to back (each carry is one path list):"
  for part in "${parts[@]}"; do
    if [[ $part == "$last" ]]; then
      echo "  carry [\"$part\", \"$CARRY/extra\"]  command: bash docs/benchmarks/gpu_check.sh device"
    else
      echo "  carry [\"$part\"]  command: ls -l $CARRY"
    fi
  done
}

step() {  # step NAME command...: run, log, keep going
  echo "== $1" | tee -a "$LOG"
  shift
  "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "   rc=$rc" | tee -a "$LOG"
  return 0
}

install() {
  local wheel_name
  wheel_name=$(awk '{print $2}' "$CARRY/extra/ort.sha256")
  cat "$CARRY"/part_* >"/tmp/$wheel_name" || return 1
  (cd /tmp && sha256sum -c "$OLDPWD/$CARRY/extra/ort.sha256") || return 1
  # --target, not a venv: the image's python3 is itself a venv, and a venv made from it would
  # not see its torch and numpy. PYTHONPATH puts this folder before the image's onnxruntime.
  SAM2_BUILD_CUDA=0 python3 -m pip install -q --no-index --no-deps --no-build-isolation \
    --target "$SITE" "/tmp/$wheel_name" "$CARRY"/extra/wheels/*
}

nvidia_lib_dirs() {  # the CUDA 13 / cuDNN libraries of the image's nvidia-* packages
  "$1" - <<'EOF'
import glob, os, site
dirs = {os.path.dirname(p) for root in site.getsitepackages()
        for p in glob.glob(os.path.join(root, "nvidia", "**", "lib*.so*"), recursive=True)}
print(":".join(sorted(dirs)))
EOF
}

device() {
  OUT=${OUT:?OUT is set on the device machine}
  LOG="$OUT/log.txt"
  local py=${DEVICE_PYTHON:-python3} models=/tmp/gpu-models
  local images=("$CARRY"/extra/images/*.jpg)
  SITE=/tmp/gpu-site
  export PYTHONPATH=$PWD:$SITE PYTHONUNBUFFERED=1
  LD_LIBRARY_PATH="$(nvidia_lib_dirs "$py")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
  date -u >"$LOG"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$LOG"
  step "nvidia-smi" nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  [[ ${SKIP_INSTALL:-0} == 1 ]] || step "install onnxruntime-gpu and the app's missing deps" install
  step "providers" "$py" -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())"
  step "export fp32" "$py" -m sam2_annotator.cli models export --config sam2.1_hiera_t \
    --random-init --no-video --out "$models/fp32"
  step "convert fp16" "$py" -c "import sys; from pathlib import Path
from sam2_annotator.models.precision import convert_precision
convert_precision(Path(sys.argv[1]), Path(sys.argv[2]), 'fp16')" "$models/fp32" "$models/fp16"
  for provider in cuda tensorrt; do
    for precision in fp32 fp16; do
      step "bench $provider $precision" "$py" -m sam2_annotator.cli bench \
        --model "$models/$precision" --providers "$provider" --runs "${RUNS:-300}" \
        --encoder-runs "${ENCODER_RUNS:-50}" --image-runs "${IMAGE_RUNS:-2}" --points 1,4 \
        --point-runs "${POINT_RUNS:-50}" --no-torch --no-progress \
        --images "${images[@]}" --out "/tmp/bench_${provider}_$precision"
      cp "/tmp/bench_${provider}_$precision/results.json" \
        "$OUT/bench_${provider}_$precision.json" 2>>"$LOG"
    done
  done
  step "eval fp16 vs fp32 on cuda" "$py" -m sam2_annotator.cli eval \
    --coco docs/benchmarks/smoke_gt_shared_photos.json --images "$CARRY/extra/images" \
    --model "$models/fp32" --compare "$models/fp16" --providers cuda --points 1,3,5 \
    --no-progress --out /tmp/eval_fp16
  cp /tmp/eval_fp16/summary.json "$OUT/eval_fp16_cuda.json" 2>>"$LOG"
  echo "== summary"
  grep -E '^(== |   rc=|model |encoder |decoder |compare )|IoU|fp32 vs|engine.providers' "$LOG" |
    uniq
}

case "${1:-}" in
  prepare) prepare ;;
  device) device ;;
  *) echo "usage: $0 prepare|device" >&2; exit 2 ;;
esac
