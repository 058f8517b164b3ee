# Sourced by the shell suites (cli, hostile, export, mpi): a scratch
# directory, "ok SUITE/NAME" / "FAIL SUITE/NAME: why" lines, and finish,
# which prints the runner's "N passed, N failed" and sets the exit status.
# Set SUITE before sourcing.
TMP=$(mktemp -d "/tmp/zq-$SUITE-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
ok() { echo "ok   $SUITE/$1"; passed=$((passed + 1)); }
fail() { echo "FAIL $SUITE/$1${2:+: $2}"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
