#!/usr/bin/env bash
# Seed sweep: runs randomised test classes many times on fresh seeds and prints, per check, the
# median and worst value seen, the seed of the worst, the bound and the margin (the smallest
# bound / value over the runs), as a Markdown table; "(info)" rows are measured, not bounded. Bounds in
# the suite must sit at least 2x above the worst value seen (docs/testing.md). Not run by CI.
#
#   tests/seed-sweep.sh [-n RUNS] [-r REPEAT] [-o FILE] TEST...
#     TEST    a Surefire -Dtest pattern: EngineTest#loraGradientsMatchAutograd, RmsNormTest, ...
#     -n      JVM runs per pattern (each run draws fresh seeds)                  default 1
#     -r      -Drelat.test.repeat: parameterised sources that honour it list each case R times
#             in one JVM (EngineTest gradient cases, QwenModelTest)              default 1
#     -o      the record file to append to (kept, so sweeps can be merged)   default a temp file
#     -D      a further system property, e.g. -D relat.test.cases=TRAINED (the EngineTest cases
#             whose name the regex finds); repeatable
#   tests/seed-sweep.sh -s FILE [-s FILE...]   summarises existing record files only; when a
#           check's bound changed between them, every value is held against the bound of its
#           last record (the files in the order given), so margins and fails are today's
#
# Needs a build first (mvn -o -DskipTests package, or any mvn verify): it runs surefire:test
# offline. A failing run is reported and the sweep goes on: failures are what it looks for.
# Replay one seed: mvn -o -ntp surefire:test -Dtest='EngineTest#loraGradientsMatchAutograd' -Drelat.test.seed=N
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; }
runs=1 repeat=1 record="" summary_only=() props=()
while getopts "n:r:o:s:D:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    r) repeat=$OPTARG ;;
    o) record=$OPTARG ;;
    s) summary_only+=("$OPTARG") ;;
    D) props+=("-D$OPTARG") ;;
    *) usage; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

summarise() {  # record files, lines: test, check, value, bound, seed (tab-separated)
  cat "$@" | sed -E 's/ \([-0-9.eE+]+ vs [-0-9.eE+]+\)//' |  # values quoted inside a check name
    awk -F'\t' -v OFS='\t' '{ line[NR] = $0; bound[$1 FS $2] = $4 }
      END { for (i = 1; i <= NR; i++) { split(line[i], f, FS); f[4] = bound[f[1] FS f[2]]
            print f[1], f[2], f[3], f[4], f[5] } }' |
    LC_ALL=C sort -t"$(printf '\t')" -k1,1 -k2,2 -k3,3g |
    awk -F'\t' '
      function row() {
        if (n == 0) return
        printf "| %-44s | %-70s | %5d | %9.2e | %9.2e | %21s | %8s | %6s | %5d |\n", test, substr(check, 1, 70),
               n, v[int((n + 1) / 2)], v[n], wseed, (wbound == "NaN" ? "(info)" : sprintf("%.1e", wbound)),
               (low == "" ? "-" : sprintf("%.1f", low)), fails
      }
      BEGIN {
        printf "| %-44s | %-70s | %5s | %9s | %9s | %21s | %8s | %6s | %5s |\n", "test", "check", "n", "median",
               "worst", "worst seed", "bound", "margin", "fails"
        print "|---|---|--:|--:|--:|--:|--:|--:|--:|"
      }
      $1 != test || $2 != check { row(); test = $1; check = $2; n = 0; low = ""; fails = 0 }
      {
        v[++n] = $3 + 0; wseed = $5; wbound = $4  # sorted by value: the last is the worst
        if ($4 != "NaN" && $3 + 0 > 0 && (low == "" || $4 / $3 < low)) low = $4 / $3
        if ($4 != "NaN" && !($3 + 0 <= $4 + 0)) fails++
      }
      END { row() }'
}

if ((${#summary_only[@]})); then summarise "${summary_only[@]}"; exit 0; fi
[[ $# -gt 0 ]] || { usage; exit 2; }
[[ -n $record ]] || record=$(mktemp /tmp/relat-sweep-XXXXXX.tsv)
failed_runs=0
for test in "$@"; do
  for ((i = 1; i <= runs; i++)); do
    log=$(mktemp /tmp/relat-sweep-log-XXXXXX)
    if mvn -B -o -ntp surefire:test -Dtest="$test" -Dsurefire.failIfNoSpecifiedTests=false \
        -Drelat.test.record="$record" -Drelat.test.repeat="$repeat" "${props[@]}" >"$log" 2>&1; then
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
