#!/bin/sh
# Runs each fuzz target for a bounded time (cargo-fuzz + libFuzzer). See README.md.
#
#   contrib/fuzz/run.sh [SECONDS] [TARGET...]     default: 60 s each, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler. Works on the stable
# toolchain: RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz passes (a nightly works
# too). FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS="-max_len=70000"); FUZZ_SANITIZER picks
# cargo-fuzz's sanitizer (default address; "none" is about twice as fast). New inputs go to
# contrib/fuzz/work/corpus/TARGET (the checked-in seeds in contrib/fuzz/corpus/TARGET are only
# read); a crash is saved in contrib/fuzz/artifacts/TARGET/ and makes this script exit 1.
set -eu

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=$root/contrib/fuzz
targets=${*:-protocol cache_load token_response device_authorization discovery registration}

command -v cargo-fuzz >/dev/null 2>&1 || {
    echo "$0: cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
}
export RUSTC_BOOTSTRAP=1
work=$fuzz/work
mkdir -p "$work/tmp"
# The cache_load target keeps its private cache directory under TMPDIR.
export TMPDIR="$work/tmp"
trap 'rm -rf "$work/tmp"' EXIT INT TERM

cd "$root"
status=0
for t in $targets; do
    mkdir -p "$work/corpus/$t" "$work/log"
    log=$work/log/$t.log
    echo "== $t: ${secs} s"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    if cargo fuzz run --fuzz-dir contrib/fuzz -s "${FUZZ_SANITIZER:-address}" "$t" \
        "$work/corpus/$t" "contrib/fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        echo "   ok: ${runs:-?} executions (${rate:-?}/s), no failure (log: $log)"
    else
        status=1
        echo "   FAILED (log: $log); crash inputs:" >&2
        ls "$fuzz/artifacts/$t/" >&2 2>/dev/null || true
        tail -n 40 "$log" >&2
    fi
done
exit $status
