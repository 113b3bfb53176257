#!/usr/bin/env bash
# Run packetdrill conformance scripts against utcp's shared object
# (utcp-packetdrill, libutcp_packetdrill.so).
#
# Usage: sudo PACKETDRILL=/path/to/packetdrill scripts/packetdrill.sh [SCRIPT.pkt ...]
#   With no script, runs every tests/packetdrill/*.pkt.
#
# Each script runs in a fresh network namespace of its own (deleted after),
# with the project's standard --so_flags plus the extra flags a script names
# on a line "// utcp-so-flags: key=value,...". Prints PASS or FAIL per script
# (with packetdrill's first error) and "N passed, N failed" last; exits
# non-zero if any failed. packetdrill is not part of this repository: build
# it yourself (docs/packetdrill.md) and point $PACKETDRILL at the binary.
# CI does not run this script.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

# The standard flags; keep in sync with docs/packetdrill.md.
LOCAL_IP=192.168.0.1
REMOTE_IP=192.0.2.1
SO_FLAGS="ip=$LOCAL_IP,mss=1460,rcvbuf=65535,wscale=on,sack=off,ts=off,delack=off,min_rto_ms=200,iw=10,tlp=off"
TIMEOUT=${PACKETDRILL_TIMEOUT:-60}

die() {
    echo "$PROG: error: $*" >&2
    exit 2
}

case ${1:-} in
    -h | --help)
        sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

[[ -n ${PACKETDRILL:-} ]] ||
    die "no packetdrill binary: set PACKETDRILL=/path/to/packetdrill (see docs/packetdrill.md for how to build it)"
[[ -x $PACKETDRILL ]] || die "PACKETDRILL=$PACKETDRILL is not an executable file"
[[ $(id -u) -eq 0 ]] || die "must run as root: each script gets its own network namespace (sudo $0)"
command -v ip >/dev/null 2>&1 || die "'ip' not found: apt-get install iproute2"
command -v cargo >/dev/null 2>&1 || die "'cargo' not found: install the Rust toolchain"

echo "==> cargo build --release -p utcp-packetdrill"
(cd "$ROOT" && cargo build --release -p utcp-packetdrill --quiet) || die "build failed"
SO=$ROOT/target/release/libutcp_packetdrill.so
[[ -f $SO ]] || die "$SO was not built"

scripts=("$@")
if [[ ${#scripts[@]} -eq 0 ]]; then
    scripts=("$ROOT"/tests/packetdrill/*.pkt)
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
i=0
for script in "${scripts[@]}"; do
    i=$((i + 1))
    name=${script#"$ROOT"/}
    if [[ ! -f $script ]]; then
        echo "FAIL $name: no such file"
        failed=$((failed + 1))
        continue
    fi
    extra=$(sed -n 's|^// utcp-so-flags: *||p' "$script" | tr -d ' ' | paste -sd, -)
    flags=$SO_FLAGS${extra:+,$extra}
    ns=utcp-pd-$$-$i
    if ! ip netns add "$ns" 2>"$log"; then
        echo "FAIL $name: could not create network namespace: $(head -n1 "$log")"
        failed=$((failed + 1))
        continue
    fi
    timeout "$TIMEOUT" ip netns exec "$ns" "$PACKETDRILL" \
        --local_ip="$LOCAL_IP" --remote_ip="$REMOTE_IP" \
        --so_filename="$SO" --so_flags="$flags" "$script" >"$log" 2>&1
    rc=$?
    ip netns delete "$ns" 2>/dev/null || true
    if [[ $rc -eq 0 ]]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        first=$(grep -m1 -i 'error\|fail\|assert' "$log" || head -n1 "$log")
        [[ $rc -eq 124 ]] && first="timed out after ${TIMEOUT}s${first:+; $first}"
        echo "FAIL $name: ${first:-exit status $rc}"
        if [[ -n ${VERBOSE:-} ]]; then
            sed 's/^/    /' "$log"
        fi
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
