#!/usr/bin/env bash
# GPU checks of relat's CUDA kernels, for a machine with an NVIDIA GPU, nvcc, CMake and python3
# with torch (no Java, Maven or network needed):
#   1. builds librelat_cuda for the local GPU and the check driver (check_kernels);
#   2. compares every kernel on the device with its CPU twin on fresh random data (check), and with
#      torch's own operations on the device (check_torch.py);
#   3. runs the small-shape checks again under compute-sanitizer (memcheck, racecheck, synccheck);
#   4. measures this GPU's floors (copy bandwidth, bf16 / fp32 GEMM rate: floors.py), then times
#      every kernel with CUDA events next to the torch equivalent and its floor.
# Usage: bash tests/gpu/run.sh LOGDIR    (full logs go to LOGDIR; the summary table prints last)
# Without a GPU it builds what it can and exits 0. Env: RELAT_PEAK_BW_GBS overrides the measured
# bandwidth floor (without floors.csv report.py falls back to an H200's datasheet values).
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash tests/gpu/run.sh LOGDIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
LOG=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$LOG/build
PEAK_GBS=${RELAT_PEAK_BW_GBS:-}
DEADLINE=$((SECONDS + 460))  # 7 min 40 s in all (a step's kill grace and the report fit in 8 min)
JOBS=$(nproc 2>/dev/null || echo 2)
failures=()

# step NAME CAP_SECONDS CMD...: runs CMD with its output in LOGDIR/NAME.log, within both its own cap
# and what is left of the overall deadline.
step() {
  local name=$1 cap=$2
  shift 2
  local left=$((DEADLINE - SECONDS))
  local limit=$((cap < left ? cap : left))
  if ((limit < 10)); then
    echo "-- $name: skipped, out of time"
    failures+=("$name (no time left)")
    return 124
  fi
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  echo "-- $name: exit $rc after $((SECONDS - start)) s (log: $name.log)"
  ((rc == 0)) || failures+=("$name (exit $rc)")
  return $rc
}

# ---- is there a GPU? -------------------------------------------------------------------------------
gpu=1
why=()
if ! command -v nvidia-smi >/dev/null; then
  gpu=0 why+=("nvidia-smi not found")
elif ! nvidia-smi >"$LOG/nvidia-smi.txt" 2>&1; then
  gpu=0 why+=("nvidia-smi failed")
fi
[[ -e /dev/nvidia0 ]] || { gpu=0 why+=("no /dev/nvidia0"); }
torch=1
if ! python3 -c "import torch" >/dev/null 2>&1; then
  torch=0
  echo "warning: python3 cannot import torch: torch timings will read n/a"
elif ! python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  gpu=0 why+=("torch.cuda.is_available() is false")
fi

NVCC=$(command -v nvcc || true)
[[ -z $NVCC && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
if [[ -z $NVCC ]]; then
  echo "error: nvcc not found (put the CUDA toolkit's bin/ on PATH)" >&2
  exit 1
fi

# ---- build ---------------------------------------------------------------------------------------------
if ((gpu)); then arch=native; else arch="80;90"; fi
echo "relat GPU checks: source $ROOT, logs $LOG, nvcc $NVCC, architectures $arch"
step configure 240 cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DRELAT_CUDA=ON "-DRELAT_CUDA_ARCHITECTURES=$arch" \
  -DRELAT_BUILD_TESTS=OFF -DRELAT_BUILD_GPU_CHECK=ON || { tail -20 "$LOG/configure.log"; exit 1; }
step build 300 cmake --build "$BUILD" -j "$JOBS" --target relat_cuda relat_cpu check_kernels ||
  { tail -30 "$LOG/build.log"; exit 1; }
CHECK=$BUILD/tests-gpu/check_kernels

if ((!gpu)); then
  # The Python steps at least parse (their CPU checks: tests/gpu/test_report.sh, and
  # check_torch.py --lib cpu, see README.md).
  for py in check_torch.py floors.py report.py bench_torch.py; do
    python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' \
      "$ROOT/tests/gpu/$py" || { echo "error: tests/gpu/$py does not parse" >&2; exit 1; }
  done
  echo "no GPU present: built only ($(IFS=,; echo "${why[*]}"))"
  exit 0
fi

# ---- correctness, then the same checks under compute-sanitizer ---------------------------------
# Step caps (seconds) after a build of ~3-4 minutes on 16 cores: check 90, check-torch 75, the
# three sanitizers 40 each on the small shapes, floors 30, bench 90, bench-torch 60; the overall
# deadline cuts the last ones short if the build took longer (every result line is flushed as it is
# produced, so a cut step keeps what it finished and report.py skips a torn last line).
step check 90 "$CHECK" check
if ((torch)); then
  step check-torch 75 env PYTHONUNBUFFERED=1 python3 "$ROOT/tests/gpu/check_torch.py" \
    "$BUILD/kernels/librelat_cuda.so" --lib cuda
else
  failures+=("check-torch (python3 cannot import torch)")
fi
SANITIZER=$(command -v compute-sanitizer || true)
[[ -z $SANITIZER ]] && SANITIZER=$(dirname "$NVCC")/compute-sanitizer
if [[ -x $SANITIZER ]]; then
  for tool in memcheck racecheck synccheck; do
    step "$tool" 40 "$SANITIZER" --tool "$tool" --error-exitcode 99 "$CHECK" check --quick
  done
else
  echo "-- compute-sanitizer not found: sanitizer checks skipped"
  failures+=("compute-sanitizer missing")
fi

# ---- timings ------------------------------------------------------------------------------------------------
if ((torch)); then
  step floors 30 env PYTHONUNBUFFERED=1 python3 "$ROOT/tests/gpu/floors.py" "$LOG/floors.csv"
fi
step bench 90 "$CHECK" bench "$LOG/bench-relat.csv"
if ((torch)); then
  step bench-torch 60 env PYTHONUNBUFFERED=1 python3 "$ROOT/tests/gpu/bench_torch.py" \
    "$LOG/bench-torch.csv"
fi

# ---- summary ---------------------------------------------------------------------------------------------------
echo
grep -h -E '^(relat_cuda|device 0|torch|check_torch: [0-9]|copy_bw|gemm_)' "$LOG/check.log" \
  "$LOG/check-torch.log" "$LOG/floors.log" "$LOG/bench-torch.log" 2>/dev/null
for name in check memcheck racecheck synccheck; do
  [[ -f $LOG/$name.log ]] || continue
  summary=$(grep -h -E 'passed, [0-9]+ failed|ERROR SUMMARY' "$LOG/$name.log" | tr '\n' ' ')
  echo "$name: ${summary:-no summary (see $name.log)}"
done
grep -h '^FAIL' "$LOG/check.log" "$LOG/check-torch.log" 2>/dev/null | head -20
if ((${#failures[@]})); then
  echo "FAILED: ${failures[*]}"
fi
echo
if [[ -f $LOG/bench-relat.csv ]]; then
  python3 "$ROOT/tests/gpu/report.py" "$LOG/bench-relat.csv" "$LOG/bench-torch.csv" \
    --floors "$LOG/floors.csv" --check-torch "$LOG/check-torch.log" \
    ${PEAK_GBS:+--peak-gbs "$PEAK_GBS"} | tee "$LOG/table.txt"
else
  echo "no timings (see bench.log)"
fi
((${#failures[@]} == 0))
