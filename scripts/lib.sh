# Helpers shared by scripts/demo.sh and scripts/forward-demo.sh (sourced,
# not run). They use the caller's PIDS array (processes the script itself
# started) and WORK directory (its logs).

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
