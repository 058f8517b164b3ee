# Sourced by the shell suites (cli, hostile, export, mpi): a scratch
# directory, "ok SUITE/NAME" / "FAIL SUITE/NAME: why" lines, run and check,
# and finish, which prints the runner's "N passed, N failed" and sets the
# exit status. Set SUITE before sourcing.
TMP=$(mktemp -d "/tmp/zq-$SUITE-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
ok() { echo "ok   $SUITE/$1"; passed=$((passed + 1)); }
fail() { echo "FAIL $SUITE/$1${2:+: $2}"; failed=$((failed + 1)); }
# run CMD...: exit code in $rc, stdout in $TMP/out, stderr in $TMP/err; at
# most 60 s, so a hang fails instead of stalling the suite
rc=0
run() {
    timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}
# check NAME 'CONDITION': ok when the shell condition (evaluated whole) holds
check() {
    if eval "$2"; then ok "$1"; else fail "$1" "exit $rc: $(head -c 300 "$TMP/err" 2>/dev/null)"; fi
}
# json_get FILE EXPR: EXPR (Python, the document as d) of the JSON in FILE
json_get() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
