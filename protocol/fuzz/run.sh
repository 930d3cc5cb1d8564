#!/bin/sh
# protocol/fuzz/run.sh FUZZ_BUILD SECONDS: `make fuzz`.  Runs every libFuzzer
# target built in FUZZ_BUILD (meson -Dfuzz=true, clang) for SECONDS each,
# starting from its seed corpus in the repository; new inputs go to
# FUZZ_BUILD/corpus/<target> (merge the useful ones into the seed corpus by
# hand), crashes to FUZZ_BUILD/crashes/<target>/.  Prints the executions of
# each target and ends with one line "make fuzz: N targets, N crashed".
set -u
B=${1:-build-fuzz}
SECS=${2:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
targets="resp:protocol/fuzz/corpus/resp dispatch:protocol/fuzz/corpus/dispatch
snapshot:replication/fuzz/corpus/snapshot repl_stream:replication/fuzz/corpus/repl_stream
http:protocol/fuzz/corpus/http tg_update:bot/fuzz/corpus/tg_update"
n=0
bad=0
summary=""
for t in $targets; do
    name=${t%%:*}
    seeds=${t#*:}
    exe=$(find "$B" -name "fuzz_$name" -type f -perm -u+x | head -1)
    [ -n "$exe" ] || continue
    n=$((n + 1))
    mkdir -p "$B/corpus/$name" "$B/crashes/$name"
    log="$B/fuzz_$name.log"
    echo "== fuzz_$name ($SECS s)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$exe" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$B/crashes/$name/" "$B/corpus/$name" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        bad=$((bad + 1))
        echo "fuzz_$name: CRASHED (rc $rc), see $log and $B/crashes/$name/"
        grep -m3 -E 'ERROR|SUMMARY|check failed' "$log"
    fi
    line="fuzz_$name: ${execs:-?} executions, $cov"
    echo "$line"
    summary="$summary$line
"
done
printf '%s' "$summary"
echo "make fuzz: $n targets, $bad crashed"
[ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
