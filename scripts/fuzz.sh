#!/bin/bash
# Coverage-guided fuzzing of what prov parses (cargo-fuzz, libFuzzer), a bounded time per
# target: YAML with positions, INI inventories, templates, `k=v` arguments. A crash, a panic,
# an out-of-memory (over 3 GiB) or an input taking over 20 s fails the run and is saved under
# fuzz/artifacts/TARGET/. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 30).
# Longer runs and reproducing a finding: fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-30}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: cargo-fuzz needs a nightly toolchain and this machine has none"
  exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.1 --locked
# Without a sanitizer: prov is safe Rust; what is looked for is panics, aborts, hangs and
# memory blow-ups, and the build is much faster.
cargo +nightly fuzz build -O -s none
for t in $(cargo +nightly fuzz list); do
  # New inputs a run finds go to runs/ (not committed); corpus/ holds the committed seeds.
  mkdir -p "runs/$t"
  # A cache, not project content (`prov schedule` copies a project without caches).
  printf 'Signature: 8a477f597d28d172789f06886806bc55\n# libFuzzer inputs found by scripts/fuzz.sh\n' >runs/CACHEDIR.TAG
  echo "fuzz: $t for ${secs}s"
  if ! cargo +nightly fuzz run -O -s none "$t" "runs/$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=3072 -timeout=20 -print_final_stats=1 >"runs/$t.log" 2>&1; then
    tail -40 "runs/$t.log"
    echo "fuzz: $t failed; the input is in fuzz/artifacts/$t/ (see fuzz/README.md)"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "runs/$t.log" || true
done
