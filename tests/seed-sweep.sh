#!/usr/bin/env bash
# Seed sweep: runs randomised test classes many times on fresh seeds and prints, per check, the
# worst error seen, the seed that produced it, the bound and the margin (bound / worst). Bounds in
# the suite must sit at least 2x above the worst value seen (README, "Test bounds"). Not run by CI.
#
#   tests/seed-sweep.sh [-n RUNS] [-r REPEAT] [-o FILE] TEST...
#     TEST    a Surefire -Dtest pattern: EngineTest#loraGradientsMatchAutograd, RmsNormTest, ...
#     -n      JVM runs per pattern (each run draws fresh seeds)                  default 1
#     -r      -Drelat.test.repeat: parameterised sources that honour it list each case R times
#             in one JVM (EngineTest gradient cases, QwenModelTest)              default 1
#     -o      the record file to append to (kept, so sweeps can be merged)   default a temp file
#   tests/seed-sweep.sh -s FILE   summarises an existing record file only
#
# Needs a build first (mvn -o -DskipTests package, or any mvn verify): it runs surefire:test
# offline. A failing run is reported and the sweep goes on: failures are what it looks for.
# Replay one seed: mvn -o -ntp surefire:test -Dtest='EngineTest#loraGradientsMatchAutograd' -Drelat.test.seed=N
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=1 repeat=1 record="" summary_only=""
while getopts "n:r:o:s:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    r) repeat=$OPTARG ;;
    o) record=$OPTARG ;;
    s) summary_only=$OPTARG ;;
    *) sed -n 2,16p "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

summarise() {  # record lines: test, check, value, bound, seed (tab-separated)
  awk -F'\t' '
    function margin(b, v) { return (b == "NaN" || v <= 0) ? "-" : sprintf("%.1f", b / v) }
    {
      gsub(/ \([-0-9.eE+]+ vs [-0-9.eE+]+\)/, "", $2)  # values quoted inside a check name
      key = $1 "\t" $2; n[key]++
      if (!(key in worst) || $3 + 0 > worst[key] + 0) { worst[key] = $3; wseed[key] = $5; wbound[key] = $4 }
      if ($4 != "NaN" && $3 + 0 > 0) {
        m = $4 / $3
        if (!(key in low) || m < low[key]) { low[key] = m; lseed[key] = $5 }
      }
      if ($4 != "NaN" && $3 + 0 > $4 + 0) fails[key]++
    }
    END {
      printf "%-44s | %-70s | %5s | %9s | %21s | %8s | %6s | %5s\n", "test", "check", "n", "worst",
             "worst seed", "bound", "margin", "fails"
      for (key in n) {
        split(key, k, "\t")
        printf "%-44s | %-70s | %5d | %9.2e | %21s | %8s | %6s | %5d\n", k[1], substr(k[2], 1, 70),
               n[key], worst[key], wseed[key], (wbound[key] == "NaN" ? "(info)" : sprintf("%.1e", wbound[key])),
               (key in low ? sprintf("%.1f", low[key]) : "-"), fails[key] + 0
      }
    }' "$1" | { IFS= read -r header; echo "$header"; sort; }
}

if [[ -n $summary_only ]]; then summarise "$summary_only"; exit 0; fi
[[ $# -gt 0 ]] || { sed -n 2,16p "$0" >&2; exit 2; }
[[ -n $record ]] || record=$(mktemp /tmp/relat-sweep-XXXXXX.tsv)
failed_runs=0
for test in "$@"; do
  for ((i = 1; i <= runs; i++)); do
    log=$(mktemp /tmp/relat-sweep-log-XXXXXX)
    if mvn -B -o -ntp surefire:test -Dtest="$test" -Dsurefire.failIfNoSpecifiedTests=false \
        -Drelat.test.record="$record" -Drelat.test.repeat="$repeat" >"$log" 2>&1; then
      echo "run $i of $test: passed ($(grep -c . "$record") records so far)"
      rm -f "$log"
    else
      failed_runs=$((failed_runs + 1))
      echo "run $i of $test: FAILED, log kept in $log:"
      grep -E '^\[ERROR\] +[A-Za-z]+Test\.|AssertionError|exceeds' "$log" | head -n 8
    fi
  done
done
echo "records: $record"
summarise "$record"
echo "failed runs: $failed_runs"
