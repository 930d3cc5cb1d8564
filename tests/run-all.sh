#!/bin/sh
# tests/run-all.sh BUILD ASAN_BUILD: every test of the project, in order:
#   1. unit tests (cmocka, via meson) on the optimised build, with the fuzz
#      corpus replays (meson suite 'fuzz': every file of every corpus under
#      protocol/fuzz, replication/fuzz, bot/fuzz fed once to its target),
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer (so every
#      corpus is replayed under the sanitizers; `make fuzz` fuzzes),
#   3. integration tests (pytest) driving the real server with redis-cli,
#      redis-benchmark and redis-py, against the optimised build and then
#      against the sanitizer build (any sanitizer report fails the run).
# Ends with one line "make test: N passed, N failed".
set -u
BUILD=${1:-build}
ASAN=${2:-build-asan}
PY=/usr/bin/python3
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
passed=0
failed=0
status=0

count_meson() { # parses meson's testlog.json
    $PY - "$1/meson-logs/testlog.json" <<'PYEOF'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
        ok += 1
    else:
        bad += 1
print(ok, bad)
PYEOF
}

run_unit() {
    echo "== unit tests ($1)"
    meson test -C "$1" --print-errorlogs --num-processes 2 || status=1
    set -- $(count_meson "$1")
    passed=$((passed + $1)); failed=$((failed + $2))
}

run_integration() { # BUILD [pytest arguments...]
    echo "== integration tests ($1)"
    junit=$(mktemp)
    server="$top/$1/obentchi-server"
    shift
    OBENTCHI_SERVER="$server" $PY -m pytest -q -rfEx -p no:cacheprovider --junitxml="$junit" tests "$@" || status=1
    set -- $($PY - "$junit" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(t - f, f)
PYEOF
)
    passed=$((passed + $1)); failed=$((failed + $2))
    rm -f "$junit"
}

run_unit "$BUILD"
run_unit "$ASAN" # includes the corpus replays under ASan/UBSan (suite 'fuzz')
run_integration "$BUILD"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    OBENTCHI_SANITIZED=1 run_integration "$ASAN"

echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
