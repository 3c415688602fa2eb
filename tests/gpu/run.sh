#!/usr/bin/env bash
# GPU checks of relat's CUDA kernels, for a machine with an NVIDIA GPU, nvcc, CMake and python3
# with torch (no Java, Maven or network needed):
#   1. builds librelat_cuda for the local GPU and the check driver (check_kernels);
#   2. compares every kernel on the device with its CPU twin on fresh random data;
#   3. runs the checks again under compute-sanitizer (memcheck, racecheck, synccheck);
#   4. times every kernel with CUDA events next to the torch equivalent and its bandwidth floor.
# Usage: bash tests/gpu/run.sh LOGDIR    (full logs go to LOGDIR; the summary table prints last)
# Without a GPU it builds what it can and exits 0. Env: RELAT_PEAK_BW_GBS (default 4800, H200 HBM).
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash tests/gpu/run.sh LOGDIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
LOG=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$LOG/build
PEAK_GBS=${RELAT_PEAK_BW_GBS:-4800}
DEADLINE=$((SECONDS + 450))  # 7.5 minutes in all, inside the 8-minute budget
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
  echo "no GPU present: built only ($(IFS=,; echo "${why[*]}"))"
  exit 0
fi

# ---- correctness, then the same checks under compute-sanitizer ---------------------------------
step check 120 "$CHECK" check
SANITIZER=$(command -v compute-sanitizer || true)
[[ -z $SANITIZER ]] && SANITIZER=$(dirname "$NVCC")/compute-sanitizer
if [[ -x $SANITIZER ]]; then
  for tool in memcheck racecheck synccheck; do
    step "$tool" 90 "$SANITIZER" --tool "$tool" --error-exitcode 99 "$CHECK" check --quick
  done
else
  echo "-- compute-sanitizer not found: sanitizer checks skipped"
  failures+=("compute-sanitizer missing")
fi

# ---- timings ------------------------------------------------------------------------------------------------
step bench 120 "$CHECK" bench "$LOG/bench-relat.csv"
if ((torch)); then
  step bench-torch 120 env PYTHONUNBUFFERED=1 python3 "$ROOT/tests/gpu/bench_torch.py" \
    "$LOG/bench-torch.csv"
fi

# ---- summary ---------------------------------------------------------------------------------------------------
echo
grep -h -E '^(relat_cuda|device 0|torch) ' "$LOG/check.log" "$LOG/bench-torch.log" 2>/dev/null
for name in check memcheck racecheck synccheck; do
  [[ -f $LOG/$name.log ]] || continue
  summary=$(grep -h -E 'passed, [0-9]+ failed|ERROR SUMMARY' "$LOG/$name.log" | tr '\n' ' ')
  echo "$name: ${summary:-no summary (see $name.log)}"
done
grep -h '^FAIL' "$LOG/check.log" 2>/dev/null | head -20
if ((${#failures[@]})); then
  echo "FAILED: ${failures[*]}"
fi
echo
if [[ -f $LOG/bench-relat.csv ]]; then
  python3 "$ROOT/tests/gpu/report.py" "$LOG/bench-relat.csv" "$LOG/bench-torch.csv" "$PEAK_GBS" |
    tee "$LOG/table.txt"
else
  echo "no timings (see bench.log)"
fi
((${#failures[@]} == 0))
