#!/usr/bin/env bash
# End-to-end demo of utcp talking to the Linux kernel's own TCP over a TUN
# device, inside a private network namespace (no traffic leaves it).
#
#   1. the kernel's nc sends "Hi, I am a client" to `utcp server`;
#   2. `utcp client` sends "Hi, I am a client" to the kernel's `nc -l`.
#
# Run as root on Linux:  sudo scripts/demo.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
PROG=${0##*/}
MESSAGE='Hi, I am a client'
DEV=utcp0
KERNEL_IP=10.77.0.1
UTCP_IP=10.77.0.2
PORT=4399
NS=utcp-demo-$$

usage() {
    cat <<EOF
Usage: sudo $PROG

Builds utcp (cargo build --release), creates a temporary network namespace
with a TUN device ($KERNEL_IP on the kernel side, utcp answers for $UTCP_IP),
and shows utcp and the kernel's TCP talking to each other in both directions.
Everything is cleaned up on exit. Needs root, /dev/net/tun, cargo, iproute2
and netcat-openbsd (nc).
EOF
}

case ${1:-} in
    -h | --help)
        usage
        exit 0
        ;;
    "") ;;
    *)
        usage >&2
        exit 2
        ;;
esac

# ---- preflight -----------------------------------------------------------------
preflight

WORK=$(mktemp -d "${TMPDIR:-/tmp}/utcp-demo.XXXXXX")
PIDS=()
NS_CREATED=0

cleanup() {
    local rc=$?
    stop_pids
    if [[ $NS_CREATED -eq 1 ]]; then
        "$ROOT/scripts/setup-tun.sh" --netns "$NS" --dev "$DEV" --down >/dev/null 2>&1 ||
            ip netns delete "$NS" 2>/dev/null || true
    fi
    [[ $rc -eq 0 ]] || show_logs
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build -----------------------------------------------------------------------
say "Building utcp (cargo build --release)"
(cd "$ROOT" && cargo build --release)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/utcp
[[ -x $BIN ]] || die "build finished but $BIN is missing"

# ---- network namespace + TUN -------------------------------------------------------
say "Creating network namespace $NS with TUN device $DEV"
NS_CREATED=1
"$ROOT/scripts/setup-tun.sh" --netns "$NS" --dev "$DEV" --addr "$KERNEL_IP/24" |
    sed 's/^/    /'
info "kernel side of $DEV: $KERNEL_IP/24; utcp will answer for $UTCP_IP"

# ---- part 1: kernel nc -> utcp server ------------------------------------------------
say "Part 1: kernel nc -> utcp server"
info "starting: ip netns exec $NS utcp server --port $PORT"
ip netns exec "$NS" env RUST_LOG="${RUST_LOG:-info}" "$BIN" --dev "$DEV" --addr "$UTCP_IP" \
    server --port "$PORT" >"$WORK/server.out" 2>"$WORK/server.log" </dev/null &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for_line "$WORK/server.log" "listening on" 10 "$SERVER_PID" ||
    die "utcp server exited or did not print 'listening on' within 10 s (see server.log below)"
info "utcp server says: $(grep -F 'listening on' "$WORK/server.log" | head -n 1)"

info "sending: printf '$MESSAGE' | nc -N -w 5 $UTCP_IP $PORT   (the kernel's TCP)"
printf '%s' "$MESSAGE" | ip netns exec "$NS" nc -N -w 5 "$UTCP_IP" "$PORT" ||
    die "kernel nc could not deliver the message to utcp server at $UTCP_IP:$PORT"

if ! wait_for_line "$WORK/server.out" "$MESSAGE" 5; then
    die "utcp server did not print '$MESSAGE' (its stdout: '$(cat "$WORK/server.out")')"
fi
grep -qxF -- "$MESSAGE" "$WORK/server.out" ||
    die "utcp server printed something other than exactly '$MESSAGE': '$(cat "$WORK/server.out")'"
info "utcp server printed:"
sed 's/^/        | /' "$WORK/server.out"
info "OK: the kernel's TCP talked to utcp."

kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true

# ---- part 2: utcp client -> kernel nc -l ------------------------------------------------
say "Part 2: utcp client -> kernel nc -l"
info "starting: ip netns exec $NS nc -l $KERNEL_IP $PORT"
ip netns exec "$NS" nc -l "$KERNEL_IP" "$PORT" >"$WORK/nc.out" 2>"$WORK/nc.log" </dev/null &
NC_PID=$!
PIDS+=("$NC_PID")

listening=0
for ((i = 0; i < 50; i++)); do
    if ip netns exec "$NS" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; then
        listening=1
        break
    fi
    kill -0 "$NC_PID" 2>/dev/null || break
    sleep 0.1
done
[[ $listening -eq 1 ]] || die "kernel nc did not start listening on $KERNEL_IP:$PORT"

info "running: ip netns exec $NS utcp client $KERNEL_IP:$PORT"
if ! ip netns exec "$NS" env RUST_LOG="${RUST_LOG:-info}" timeout 30 "$BIN" --dev "$DEV" --addr "$UTCP_IP" \
    client "$KERNEL_IP:$PORT" --message "$MESSAGE" >"$WORK/client.out" 2>"$WORK/client.log" </dev/null; then
    die "utcp client failed (exit status non-zero; see client.log below)"
fi

# nc -l exits once the connection is closed; give it a bounded moment.
for ((i = 0; i < 50; i++)); do
    kill -0 "$NC_PID" 2>/dev/null || break
    sleep 0.1
done
received=$(cat "$WORK/nc.out")
[[ $received == "$MESSAGE" ]] ||
    die "kernel nc received '$received' instead of '$MESSAGE'"
info "kernel nc printed:"
sed 's/^/        | /' "$WORK/nc.out"
echo
info "OK: utcp talked to the kernel's TCP."

say "Demo succeeded: utcp and the Linux kernel exchanged '$MESSAGE' both ways."
info "(cleaning up namespace $NS)"
