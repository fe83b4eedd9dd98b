#!/usr/bin/env bash
# Benchmark of git-credential-iam: builds the release binary (unless BENCH_BIN names one), then
# runs contrib/bench/bench.py, which prints a Markdown report on stdout (progress on stderr).
# Needs python3 (standard library only), git, node 20+ (the test IdP in tests/idp/) and, for
# the peak-RSS row, GNU time at /usr/bin/time (Debian package `time`).
#
#   contrib/bench/run.sh [--runs N] [--warmup N] [--rss-runs N] [--accounts 1,100,10000]
#                        [--refresh-rounds N] [--signin-rounds N] [--json FILE] [--keep]
#
# Environment: BENCH_BIN=PATH skips the build; CARGO_TARGET_DIR is honoured (default target/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -z ${BENCH_BIN:-} ]]; then
  target=${CARGO_TARGET_DIR:-$root/target}
  (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release --locked) >&2
  BENCH_BIN=$target/release/git-credential-iam
fi
exec python3 "$here/bench.py" --bin "$BENCH_BIN" "$@"
