#!/usr/bin/env bash
# `utcp forward` in the topology it is built for, inside three network
# namespaces of this script's own (no traffic leaves them):
#
#   app  (clients; default route into the TUN device)
#    |  utcp0: 10.77.0.1/24, moved here after utcp opened it
#   relay (utcp forward holds the TUN device's queue; its kernel sockets
#    |     use this namespace's routing, which cannot lead into the TUN)
#    |  veth 10.98.0.1/24 <-> 10.98.0.2/24
#   servers (kernel nc servers at 10.98.1.1 and 10.98.2.2)
#
# Clients in app dial the servers' real addresses; utcp accepts each
# connection (any-IP), learns the original destination and relays it.
#
# Run as root on Linux:  sudo scripts/forward-demo.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
PROG=${0##*/}
DEV=utcp0
APP=utcpfwd-app-$$
RELAY=utcpfwd-relay-$$
SERVERS=utcpfwd-srv-$$
NAMESPACES=("$APP" "$RELAY" "$SERVERS")

case ${1:-} in
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: sudo $PROG" >&2
        exit 2
        ;;
esac

preflight

WORK=$(mktemp -d "${TMPDIR:-/tmp}/utcp-forward-demo.XXXXXX")
PIDS=()

cleanup() {
    local rc=$? ns
    stop_pids
    for ns in "${NAMESPACES[@]}"; do
        ip netns delete "$ns" 2>/dev/null || true
    done
    [[ $rc -eq 0 ]] || show_logs
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_listen NS PORT: bounded wait for a kernel listener.
wait_listen() {
    local i
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    die "nothing listens on port $2 in $1"
}

say "Building utcp (cargo build --release)"
(cd "$ROOT" && cargo build --release)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/utcp

say "Creating namespaces $APP, $RELAY, $SERVERS"
for ns in "${NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$RELAY" link add fwd-r type veth peer name fwd-s netns "$SERVERS"
ip -n "$RELAY" addr add 10.98.0.1/24 dev fwd-r
ip -n "$RELAY" link set fwd-r up
ip -n "$SERVERS" addr add 10.98.0.2/24 dev fwd-s
ip -n "$SERVERS" link set fwd-s up
ip -n "$SERVERS" addr add 10.98.1.1/32 dev lo
ip -n "$SERVERS" addr add 10.98.2.2/32 dev lo
ip -n "$RELAY" route add 10.98.1.0/24 via 10.98.0.2
ip -n "$RELAY" route add 10.98.2.0/24 via 10.98.0.2
ip -n "$RELAY" tuntap add dev "$DEV" mode tun
info "relay: veth 10.98.0.1 -> servers 10.98.0.2 (10.98.1.1, 10.98.2.2 behind it); $DEV created here"

say "Starting kernel servers in $SERVERS"
for target in 10.98.1.1:8001 10.98.2.2:9002; do
    addr=${target%:*} port=${target#*:}
    printf 'hello from the server at %s\n' "$target" |
        ip netns exec "$SERVERS" nc -N -l "$addr" "$port" >"$WORK/server-$port.out" 2>"$WORK/server-$port.log" &
    PIDS+=($!)
    wait_listen "$SERVERS" "$port"
    info "nc -l $addr $port"
done

say "Starting utcp forward in $RELAY"
ip netns exec "$RELAY" env RUST_LOG="${RUST_LOG:-info}" "$BIN" --dev "$DEV" forward \
    >"$WORK/forward.out" 2>"$WORK/forward.log" </dev/null &
FORWARD_PID=$!
PIDS+=("$FORWARD_PID")
wait_for_line "$WORK/forward.log" "forwarding" 10 "$FORWARD_PID" ||
    die "utcp forward did not start (see forward.log)"
info "$(grep -F forwarding "$WORK/forward.log")"

say "Moving $DEV into $APP (utcp keeps its queue) and routing everything into it"
ip -n "$RELAY" link set "$DEV" netns "$APP"
ip -n "$APP" addr add 10.77.0.1/24 dev "$DEV"
ip -n "$APP" link set "$DEV" up
ip -n "$APP" route add default dev "$DEV"
info "app: default dev $DEV; the relay's sockets stay in $RELAY, so nothing can loop"

say "Clients in $APP dial the servers' real addresses"
for target in 10.98.1.1:8001 10.98.2.2:9002; do
    addr=${target%:*} port=${target#*:}
    reply=$(printf 'Hi, I am a client of %s\n' "$target" |
        ip netns exec "$APP" timeout 10 nc -N "$addr" "$port") || die "nc $addr $port failed"
    [[ $reply == "hello from the server at $target" ]] || die "client got '$reply' from $target"
    info "client -> $target: got '$reply'"
done
for port in 8001 9002; do
    for ((i = 0; i < 50; i++)); do
        grep -q "Hi, I am a client" "$WORK/server-$port.out" && break
        sleep 0.1
    done
    info "server :$port printed: $(cat "$WORK/server-$port.out")"
    grep -q "Hi, I am a client" "$WORK/server-$port.out" || die "server :$port got nothing"
done

say "A port nobody listens on: the client sees its connect succeed, then a reset"
# bash's /dev/tcp connects, then cat reads until the reset.
if out=$(ip netns exec "$APP" timeout 10 bash -c \
    'exec 3<>/dev/tcp/10.98.1.1/8999 && echo connected && cat <&3' 2>&1); then
    die "reading from 10.98.1.1:8999 ended without an error: '$out'"
fi
grep -q "reset by peer" <<<"$out" || die "no reset from 10.98.1.1:8999: '$out'"
info "client -> 10.98.1.1:8999: $(tr '\n' ' ' <<<"$out")"

say "Stopping utcp forward (SIGTERM): its relay log and counters"
kill -TERM "$FORWARD_PID"
wait "$FORWARD_PID" || die "utcp forward exited with an error"
grep -F 'relay ' "$WORK/forward.log" | sed 's/^/    /'
grep -F 'utcp: forward:' "$WORK/forward.log" | sed 's/^/    /'
grep -q ' 2 closed, .* 1 connect failed' "$WORK/forward.log" ||
    die "the counters do not show 2 closed relays and 1 failed connect"

say "Demo succeeded: clients in $APP reached kernel servers through utcp forward."
