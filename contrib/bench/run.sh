#!/usr/bin/env bash
# Benchmark of git-credential-iam: builds the release binary (unless BENCH_BIN names one), then
# runs contrib/bench/bench.py, which prints a Markdown report on stdout (progress on stderr).
# Needs python3 (standard library only), git, node 20+ (the test IdP in tests/idp/) and, for
# the peak-RSS row, GNU time at /usr/bin/time (Debian package `time`).
#
#   contrib/bench/run.sh [--runs N] [--warmup N] [--rss-runs N] [--accounts 1,100,10000]
#                        [--refresh-rounds N] [--signin-rounds N] [--json FILE] [--keep]
#
#                        [--also NAME=PATH]...
#
# Environment: BENCH_BIN=PATH skips the build; CARGO_TARGET_DIR is honoured (default target/).
# BENCH_STATIC=1 also builds the static-PIE release binary the packages ship (the command of
# contrib/packaging/README.md) and times it side by side with BENCH_BIN in item 1
# (`--also static-pie=PATH`); BENCH_STATIC_BIN=PATH does the same with a binary built already.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z ${BENCH_BIN:-} ]]; then
  (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release --locked) >&2
  BENCH_BIN=$target/release/git-credential-iam
fi
if [[ ${BENCH_STATIC:-} == 1 && -z ${BENCH_STATIC_BIN:-} ]]; then
  triple=$(rustc -vV | sed -n 's/^host: //p')
  (cd "$root" && CARGO_TARGET_DIR=$target RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple") >&2
  BENCH_STATIC_BIN=$target/$triple/release/git-credential-iam
fi
if [[ -n ${BENCH_STATIC_BIN:-} ]]; then
  set -- --also "static-pie=$BENCH_STATIC_BIN" "$@"
fi
exec python3 "$here/bench.py" --bin "$BENCH_BIN" "$@"
