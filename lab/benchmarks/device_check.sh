#!/usr/bin/env bash
# The GPU check, as run on a lent device machine (which has torch but not diffusers: wheels travel in .whl/).
#  1. tiny-random TAUE on CUDA in float16 (device placement of every piece of the method);
#  2. lab/benchmarks/overhead.py on full-size SDXL with random weights, fp16, 1024x1024, 50 steps (and 3. 8 steps);
#  4. lab/benchmarks/previews.py on the same model: what previews cost.
set -uo pipefail
OUT=${OUT:-/tmp/taue-device}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'PY' 2>&1 | tee "$OUT/smoke.log"
import torch
from taue_engine import TAUEPipeline, TAUEConfig
pipe = TAUEPipeline.from_pretrained("tiny-random")
pipe.set_progress_bar_config(disable=True)
print("device", pipe.device, "dtype", pipe.dtype)
r = pipe("a red star", "a blue striped background", seed=3, width=256, height=256, layout=(0.5, 0.5, 0.5, 0.5),
         config=TAUEConfig(num_inference_steps=20))
assert r.foreground.mode == "RGBA" and r.composite.size == (256, 256)
print("SMOKE OK", r.metadata["device"], r.metadata["dtype"], r.metadata["mask_source"], r.metadata["timings_s"])
PY
python3 -m lab.benchmarks.overhead --model random-sdxl --width 1024 --height 1024 --dtype float16 --steps 50 \
  --repeats 5 --json "$OUT/gpu_overhead.json" 2>&1 | grep -v "kept in float32" | tee "$OUT/gpu_overhead.log"
# 3. the few-step settings (SDXL-Lightning's: 8 steps, no CFG, trailing timesteps) on the same full-size SDXL.
python3 -m lab.benchmarks.overhead --model random-sdxl --width 1024 --height 1024 --dtype float16 --steps 8 --guidance 1 \
  --timestep-spacing trailing --repeats 5 --json "$OUT/gpu_overhead_8steps.json" 2>&1 | grep -v "kept in float32" \
  | tee "$OUT/gpu_overhead_8steps.log"
# 4. what previews cost on full-size SDXL (the linear map every step and at the server's pace, and a VAE decode).
python3 -m lab.benchmarks.previews --model random-sdxl --width 1024 --height 1024 --dtype float16 --steps 50 \
  --repeats 3 --json "$OUT/gpu_previews.json" 2>&1 | grep -v "kept in float32" | tee "$OUT/gpu_previews.log"
