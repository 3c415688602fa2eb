#!/usr/bin/env bash
# Fuzzes every Jazzer target, or the ones named: tests/fuzz.sh [Class#method ...]
# Under plain Surefire the @FuzzTest methods only replay their stored corpus
# (tests/resources/dev/relat/**/*FuzzTestInputs/<method>/); here JAZZER_FUZZ=1 mutates inputs for
# the @FuzzTest's maxDuration (10 s; for a long run raise it, docs/testing.md "Fuzzing"). A finding
# fails the run and Jazzer writes its input as crash-* in the project root: once the bug is fixed,
# move it into the target's Inputs folder, where it stays as a regression input. The generated
# corpus goes to .cifuzz-corpus/ (ignored). Needs a built tree (mvn test-compile).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(dev.relat.model.ParsersFuzzTest#safetensorsHeader dev.relat.model.ParsersFuzzTest#configJson
           dev.relat.model.ParsersFuzzTest#chatTemplate dev.relat.eval.EvalInputsFuzzTest#datasetLines
           dev.relat.eval.EvalInputsFuzzTest#answerText)
fi
status=0
for target in "${targets[@]}"; do
  echo "fuzz: $target"
  if ! JAZZER_FUZZ=1 mvn -B -ntp -o -q surefire:test -Dtest="$target" -Dsurefire.failIfNoSpecifiedTests=false \
      > "target/fuzz-${target#*#}.log" 2>&1; then
    echo "fuzz: $target FAILED (target/fuzz-${target#*#}.log)"; grep -m5 -E 'FuzzTest|Exception|crash-' "target/fuzz-${target#*#}.log" || true
    status=1
  fi
  grep -h -E '^Done [0-9]+ runs' "target/fuzz-${target#*#}.log" | tail -1 || true
done
exit $status
