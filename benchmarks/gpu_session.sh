#!/usr/bin/env bash
# One call on a GPU machine, at most 9.2 minutes (each step's limit): what issue 8 still has to check and time on a GPU.
#
#   OUT=results benchmarks/gpu_session.sh          (the device tool sets OUT itself)
#
# Each step runs under its own time limit, so one that hangs (a grid barrier that never opens,
# say) costs its limit and no more; every step writes what it found before the next one starts.
# Files under $OUT (at most 8 come back from the device tool): session.log (all output), tests.xml,
# and one markdown file per step.
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
LOG="$OUT/session.log"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*" | tee -a "$LOG"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$LOG" 2>&1
    echo "== $name: exit $? after $((SECONDS - start)) s" | tee -a "$LOG"
}

step device 30 python3 -c "import torch, triton; p = torch.cuda.get_device_properties(0); print(p.name, p.multi_processor_count, 'SMs; torch', torch.__version__, 'triton', triton.__version__)"
# correctness first: every engine against the reference (float64); the persistent kernels with 13
# programs at the barrier (both gru barrier orders, bf16 too); the CUDA-graph samplers; the
# sampling aim (µs per token at H=1024, B=1)
step correctness 200 python3 benchmarks/gpu.py --sections correctness sampling-check sampling-aim --out "$OUT/correctness.md"
# the course gru against cuDNN's GRU under each setting, and what one grid barrier costs
step gru 120 python3 benchmarks/gpu.py --sections barrier tune-gru --out "$OUT/gru.md"
# the tests that mean most on a GPU: CUDA-graph capture of the persistent kernels, the sampler's
# seed and first step, both barrier orders of the gru, autocast
step tests 80 python3 -m pytest -q -p no:cacheprovider tests/test_triton.py \
    -k "graphed or seed or arrive_and_wait or host or autocast or fused_sampler or persistent_row_tiles" --junitxml="$OUT/tests.xml"
# the training table for the engines timed on a GPU for the first time (rnn, gru-simple and
# gru-cudnn persistent), two shapes, fp16
step training 90 python3 benchmarks/gpu.py --sections training --short --quick --dtypes fp16 --out "$OUT/training.md"
# the native engine's host time next to torch.nn.LSTM at the shape where it was 0.4 ms slower
step native 30 bash -c "python3 benchmarks/native_host.py --device cuda --shape 256 8 256 --steps 30 --rounds 3 > '$OUT/native.md'"
echo "== done after $SECONDS s" | tee -a "$LOG"
