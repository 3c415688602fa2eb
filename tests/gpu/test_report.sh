#!/usr/bin/env bash
# report.py on canned files (tests/gpu/testdata), no GPU needed: each CSV and one check_torch log
# end in a line cut mid-write, as a step killed by its time limit leaves them. The table must still
# print, count the skipped lines, flag the rows under 50% of their floor (bytes or FLOP bound) and
# give check_torch's counts. .ci/run calls this next to run.sh's no-GPU mode.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=$here/testdata
fails=0

expect() {  # expect WHAT PATTERN TEXT: TEXT must contain a line matching the extended regex
  if ! grep -E -q -- "$2" <<< "$3"; then
    echo "test_report: FAIL: $1 (no line matching: $2)"
    fails=$((fails + 1))
  fi
}
reject() {  # reject WHAT PATTERN TEXT: no line of TEXT may match
  if grep -E -q -- "$2" <<< "$3"; then
    echo "test_report: FAIL: $1 (a line matches: $2)"
    fails=$((fails + 1))
  fi
}

out=$(python3 "$here/report.py" "$data/bench-relat.csv" "$data/bench-torch.csv" \
  --floors "$data/floors.csv" --check-torch "$data/check-torch.txt" 2>&1)
rc=$?
echo "$out"
[[ $rc == 0 ]] || { echo "test_report: FAIL: report.py exited $rc"; fails=$((fails + 1)); }
expect "measured floors named" 'floors measured in this run' "$out"
expect "torn relat line counted" 'bench-relat.csv: skipped 1 line' "$out"
expect "torn torch line counted" 'bench-torch.csv: skipped 1 line' "$out"
expect "table header" 'kernel +dtype +shape +relat us +torch us' "$out"
expect "rmsnorm bf16 row, not flagged" 'rmsnorm +bf16 +65536x1024 +120\.0 +150\.0 +1\.25x +89\.5 +bytes +75% +[0-9]+ +- *$' "$out"
expect "rmsnorm f32 flagged" 'rmsnorm +f32 +65536x1024 .* 36% .*<50%$' "$out"
expect "cross-entropy FLOP-bound, not flagged" 'linear_cross_entropy +bf16 .* flops +73% .*[0-9] *$' "$out"
expect "attention forward FLOP-bound and flagged" 'attention_fwd +bf16 +2048x2048 .* flops +8% .*<50%$' "$out"
expect "attention backward f32 at the f32 GEMM rate" 'attention_bwd +f32 +256x456 .* 33\.7 +flops +4% .*<50%$' "$out"
reject "torn row in the table" '^ *gemv_forward' "$out"
expect "flag count" '^3 of 5 timings under 50% of their floor' "$out"
expect "check_torch counts" 'check_torch .*: 3 passed, 1 failed' "$out"
expect "check_torch failure listed" '^  FAIL gemv_forward bf16' "$out"

# No floors.csv: datasheet fallback, named in the header; RELAT_PEAK_BW_GBS override; a cut log.
out=$(python3 "$here/report.py" "$data/bench-relat.csv" "$data/missing.csv" \
  --floors "$data/missing-floors.csv" --check-torch "$data/check-torch-cut.txt" --peak-gbs 3350 2>&1)
rc=$?
echo "$out"
[[ $rc == 0 ]] || { echo "test_report: FAIL: report.py (no floors) exited $rc"; fails=$((fails + 1)); }
expect "fallback named" 'floors.csv missing: H200 datasheet floors' "$out"
expect "override named" 'overridden by RELAT_PEAK_BW_GBS = 3350' "$out"
expect "torch n/a" 'rmsnorm +bf16 +65536x1024 +120\.0 +n/a +n/a' "$out"
expect "cut check_torch log" 'INCOMPLETE .*: 1 passed, 0 failed' "$out"

if ((fails)); then
  echo "test_report: $fails check(s) failed"
  exit 1
fi
echo "test_report: all checks passed"
