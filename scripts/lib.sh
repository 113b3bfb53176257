# Helpers shared by scripts/demo.sh and scripts/forward-demo.sh (sourced,
# not run). They use the caller's PROG (its name), PIDS array (processes the
# script itself started) and WORK directory (its logs).

say() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
    printf '\n%s: FAILED: %s\n' "$PROG" "$*" >&2
    exit 1
}

# preflight: what every demo needs: root, /dev/net/tun, ip, cargo and
# netcat-openbsd (nc with -N).
preflight() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces and a TUN device): sudo $0"
    [[ -c /dev/net/tun ]] || die "/dev/net/tun is missing (try: modprobe tun)"
    command -v ip >/dev/null 2>&1 || die "'ip' not found: apt-get install iproute2"
    command -v cargo >/dev/null 2>&1 || die "'cargo' not found: install the Rust toolchain (https://rustup.rs)"
    command -v nc >/dev/null 2>&1 || die "'nc' not found: apt-get install netcat-openbsd"
    nc -h 2>&1 | grep -q -- '-N' ||
        die "this 'nc' is not netcat-openbsd (no -N option): apt-get install netcat-openbsd"
}

# stop_pids: kill, then reap, every process in PIDS.
stop_pids() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# show_logs: the last 30 lines of every non-empty $WORK/*.log, on stderr
# (after a failure).
show_logs() {
    local f
    [[ -d $WORK ]] || return 0
    for f in "$WORK"/*.log; do
        [[ -s $f ]] || continue
        printf '\n--- %s (last 30 lines) ---\n' "${f##*/}" >&2
        tail -n 30 "$f" >&2
    done
}

# wait_for_line FILE PATTERN SECONDS [PID]: wait (bounded) until FILE has a
# line with the fixed string PATTERN; fail early if PID dies.
wait_for_line() {
    local file=$1 pattern=$2 secs=$3 pid=${4:-} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -qF -- "$pattern" "$file" 2>/dev/null && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}
