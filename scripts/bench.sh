#!/usr/bin/env bash
# Side-by-side benchmark: utcp and a small smoltcp server (bench/smoltcp-server)
# over the same TUN device, inside a network namespace this script creates,
# with the same pinning (server on CPU0, client on CPU1) and the same
# kernel-side Python clients (bench/clients.py). Runs alternate between the
# two stacks, R repetitions per figure; prints medians and utcp/smoltcp ratios
# and writes docs/BENCHMARKS.md. Every wait is bounded; the namespace and the
# processes this script started are cleaned up on any exit.
#
# Figures printed, never asserted.
set -euo pipefail

PROG=${0##*/}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

REPS=5
BULK_MIB=1024
CONC=10000
PAR_FLOWS=8
RTT_N=20000
SEQ_N=5000
QUICK=0
OUT=
OUT_SET=0
ONLY=
CONC_TIMEOUT=60
CONC_CONNECT_TIMEOUT=120

usage() {
    cat <<EOF
Usage: $PROG [--reps N] [--bulk-mib N] [--conc N] [--quick] [--only FIGS] [--out FILE]

Build utcp and bench/smoltcp-server in release mode, run both over one TUN
device in a private network namespace, alternating, and print medians.

  --reps N       repetitions per figure and stack (default $REPS)
  --bulk-mib N   bytes per bulk transfer, in MiB (default $BULK_MIB)
  --conc N       concurrent connections for the idle/echo-round test (default $CONC)
  --quick        smoke run: 1 rep, 64 MiB bulk, 2000 RTT rounds, 500
                 connections, 1000 concurrent; writes no report unless --out
  --only FIGS    only these figures, comma-separated among bulk_in, bulk_out,
                 bulk_in_offload, bulk_out_offload, par_in, par_in_mq1, par_in_mq,
                 rtt, rtt_offload, seqconn, seqconn_offload, conc;
                 writes no report unless --out
  --out FILE     where to write the report (default docs/BENCHMARKS.md)
  -h, --help     this help

Needs root, /dev/net/tun, iproute2, taskset, python3 and cargo.
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        --reps) REPS=${2:?--reps needs a value}; shift 2 ;;
        --bulk-mib) BULK_MIB=${2:?--bulk-mib needs a value}; shift 2 ;;
        --conc) CONC=${2:?--conc needs a value}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=${2:?--only needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a value}; OUT_SET=1; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$PROG: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ $QUICK -eq 1 ]]; then
    REPS=1
    BULK_MIB=64
    RTT_N=2000
    SEQ_N=500
    CONC=1000
    CONC_TIMEOUT=30
    CONC_CONNECT_TIMEOUT=30
fi
for v in REPS BULK_MIB CONC; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer"
done
FIGS=(bulk_in bulk_out bulk_in_offload bulk_out_offload par_in par_in_mq1 par_in_mq rtt rtt_offload seqconn seqconn_offload conc)
if [[ -n $ONLY ]]; then
    IFS=, read -r -a FIGS <<<"$ONLY"
    for f in "${FIGS[@]}"; do
        [[ " bulk_in bulk_out bulk_in_offload bulk_out_offload par_in par_in_mq1 par_in_mq rtt rtt_offload seqconn seqconn_offload conc " == *" $f "* ]] || die "unknown figure '$f' in --only"
    done
fi
if [[ $OUT_SET -eq 0 && $QUICK -eq 0 && -z $ONLY ]]; then
    OUT=$ROOT/docs/BENCHMARKS.md
fi
BULK_BYTES=$((BULK_MIB * 1024 * 1024))

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, TUN device)"
for t in ip taskset python3 cargo timeout; do
    command -v "$t" >/dev/null || die "'$t' not found"
done
[[ -c /dev/net/tun ]] || die "/dev/net/tun is missing"

NS=utcp-bench-$$
DEV=utcp0
WORK=$(mktemp -d /tmp/utcp-bench.XXXXXX)
SERVER_PID=

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

cleanup() {
    set +e
    stop_server
    "$ROOT/scripts/setup-tun.sh" --netns "$NS" --down >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
echo "$PROG: building (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin utcp) || die "building utcp failed"
cargo build --release --quiet --manifest-path "$ROOT/bench/smoltcp-server/Cargo.toml" ||
    die "building bench/smoltcp-server failed"
UTCP=$ROOT/target/release/utcp
SMOL=$ROOT/bench/smoltcp-server/target/release/smoltcp-server
CLIENTS=$ROOT/bench/clients.py

"$ROOT/scripts/setup-tun.sh" --netns "$NS" --dev "$DEV" >/dev/null
# A second, multi-queue device for utcp --queues 2 (figure par_in_mq).
MQDEV=utcpq
"$ROOT/scripts/setup-tun.sh" --netns "$NS" --dev "$MQDEV" --addr 10.78.0.1/24 --multi-queue >/dev/null
MQHOST=10.78.0.2
# Many short connections from one address: a wide port range, and reuse of
# TIME-WAIT ports for new connections (both per namespace).
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_local_port_range="1024 65000" \
    net.ipv4.tcp_tw_reuse=1 >/dev/null

HOST=10.77.0.2
# start_server STACK FIGURE: starts the server pinned to CPU0, sets SERVER_PID.
start_server() {
    local stack=$1 fig=$2 log=$WORK/server.log
    : >"$log"
    case $stack/$fig in
        utcp/bulk_in) taskset -c 0 ip netns exec "$NS" "$UTCP" sink --port 9 </dev/null >"$log" 2>&1 & ;;
        utcp/bulk_out) taskset -c 0 ip netns exec "$NS" "$UTCP" source --port 5001 --bytes "$BULK_BYTES" </dev/null >"$log" 2>&1 & ;;
        utcp/bulk_in_offload) taskset -c 0 ip netns exec "$NS" "$UTCP" --offload sink --port 9 </dev/null >"$log" 2>&1 & ;;
        utcp/bulk_out_offload) taskset -c 0 ip netns exec "$NS" "$UTCP" --offload source --port 5001 --bytes "$BULK_BYTES" </dev/null >"$log" 2>&1 & ;;
        utcp/par_in) taskset -c 0 ip netns exec "$NS" "$UTCP" sink --port 9 </dev/null >"$log" 2>&1 & ;;
        # Shards not pinned: on 2 CPUs they share them with the client.
        utcp/par_in_mq1) ip netns exec "$NS" "$UTCP" --dev "$MQDEV" --addr "$MQHOST" --queues 1 sink --port 9 </dev/null >"$log" 2>&1 & ;;
        utcp/par_in_mq) ip netns exec "$NS" "$UTCP" --dev "$MQDEV" --addr "$MQHOST" --queues 2 sink --port 9 </dev/null >"$log" 2>&1 & ;;
        utcp/rtt_offload | utcp/seqconn_offload) taskset -c 0 ip netns exec "$NS" "$UTCP" --offload echo --port 7 </dev/null >"$log" 2>&1 & ;;
        utcp/rtt | utcp/seqconn | utcp/conc) taskset -c 0 ip netns exec "$NS" "$UTCP" echo --port 7 </dev/null >"$log" 2>&1 & ;;
        smoltcp/bulk_in | smoltcp/bulk_in_offload) taskset -c 0 ip netns exec "$NS" "$SMOL" sink 9 </dev/null >"$log" 2>&1 & ;;
        smoltcp/par_in | smoltcp/par_in_mq1 | smoltcp/par_in_mq) taskset -c 0 ip netns exec "$NS" "$SMOL" sink 9 $((PAR_FLOWS + 4)) </dev/null >"$log" 2>&1 & ;;
        smoltcp/bulk_out | smoltcp/bulk_out_offload) taskset -c 0 ip netns exec "$NS" "$SMOL" source 5001 "$BULK_BYTES" </dev/null >"$log" 2>&1 & ;;
        smoltcp/rtt | smoltcp/seqconn | smoltcp/rtt_offload | smoltcp/seqconn_offload) taskset -c 0 ip netns exec "$NS" "$SMOL" echo 7 64 </dev/null >"$log" 2>&1 & ;;
        smoltcp/conc) taskset -c 0 ip netns exec "$NS" "$SMOL" echo 7 $((CONC + 50)) </dev/null >"$log" 2>&1 & ;;
        *) die "no server for $stack/$fig" ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q 'listening' "$log" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$PROG: $stack server for $fig did not start: $(tail -n 3 "$log")" >&2
    stop_server
    return 1
}

# run_client STACK FIGURE REP: one measurement, JSON (or an error) into $WORK/res.
run_client() {
    local stack=$1 fig=$2 rep=$3 res=$WORK/res/$fig.$stack.$rep.json limit
    local -a cmd
    case $fig in
        bulk_in | bulk_in_offload) cmd=(bulk-in "$HOST" 9 "$BULK_BYTES"); limit=120 ;;
        bulk_out | bulk_out_offload) cmd=(bulk-out "$HOST" 5001 "$BULK_BYTES"); limit=120 ;;
        par_in) cmd=(pbulk-in "$HOST" 9 "$BULK_BYTES" "$PAR_FLOWS"); limit=120 ;;
        par_in_mq1 | par_in_mq)
            local host=$HOST
            [[ $stack == utcp ]] && host=$MQHOST
            cmd=(pbulk-in "$host" 9 "$BULK_BYTES" "$PAR_FLOWS"); limit=120 ;;
        rtt | rtt_offload) cmd=(rtt "$HOST" 7 "$RTT_N"); limit=60 ;;
        seqconn | seqconn_offload) cmd=(seqconn "$HOST" 7 "$SEQ_N"); limit=60 ;;
        conc) cmd=(conc "$HOST" 7 "$CONC"); limit=$((CONC_CONNECT_TIMEOUT + CONC_TIMEOUT + 60)) ;;
    esac
    if ! start_server "$stack" "$fig"; then
        echo '{"error": "server did not start"}' >"$res"
        return 0
    fi
    [[ $fig == conc ]] && cmd+=("$SERVER_PID" "$DEV")
    local rc=0
    timeout -k 5 "$limit" taskset -c 1 ip netns exec "$NS" \
        python3 "$CLIENTS" --timeout "$CONC_TIMEOUT" --connect-timeout "$CONC_CONNECT_TIMEOUT" "${cmd[@]}" >"$res.out" 2>"$res.err" || rc=$?
    if [[ $rc -eq 0 ]] && [[ -s $res.out ]]; then
        tail -n 1 "$res.out" >"$res"
    else
        local why
        why=$(tail -n 1 "$res.err" | tr -d '"\\')
        [[ $rc -eq 124 ]] && why="no result within ${limit} s"
        echo "{\"error\": \"${why:-exit $rc}\"}" >"$res"
    fi
    stop_server
    echo "$PROG: $fig $stack rep $rep: $(cat "$res")" >&2
}

mkdir -p "$WORK/res"
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
QLEN=$(ip -n "$NS" -o link show "$DEV" | sed -n 's/.* qlen \([0-9]*\).*/\1/p')
for rep in $(seq 1 "$REPS"); do
    for fig in "${FIGS[@]}"; do
        # Alternate which stack goes first, so drift hits both alike.
        if ((rep % 2 == 1)); then order=(utcp smoltcp); else order=(smoltcp utcp); fi
        for stack in "${order[@]}"; do
            run_client "$stack" "$fig" "$rep"
        done
    done
done

CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
SMOLV=$(awk '/^name = "smoltcp"$/ {getline; gsub(/version = |"/, ""); print}' \
    "$ROOT/bench/smoltcp-server/Cargo.lock")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
export REPS BULK_MIB CONC PAR_FLOWS RTT_N SEQ_N QUICK START CPU SMOLV LOAD_START LOAD_END QLEN
export CONC_TIMEOUT CONC_CONNECT_TIMEOUT
export FIGS_RUN="${FIGS[*]}"
export NPROC=$(nproc) KERNEL=$(uname -r) RUSTC=$(rustc --version)
export COMMIT DIRTY
export CMDLINE="sudo scripts/bench.sh${ARGS[*]:+ ${ARGS[*]}}"
python3 - "$WORK/res" "$OUT" <<'EOF'
import glob, json, os, statistics, sys

resdir, out = sys.argv[1], sys.argv[2]
E = os.environ
def load(fig, stack):
    vals = []
    for p in sorted(glob.glob(f"{resdir}/{fig}.{stack}.*.json")):
        try:
            with open(p) as f:
                vals.append(json.load(f))
        except Exception as e:
            vals.append({"error": f"bad result: {e}"})
    return vals

# (label, figure, key, unit, format, partial): with partial, a run that failed
# part-way (not all connections opened) still gives this figure, marked.
C = E["CONC"]
ROWS = [
    (f"bulk kernel -> stack, {E['BULK_MIB']} MiB", "bulk_in", "MBps", "MB/s", "{:,.0f}", False),
    (f"bulk stack -> kernel, {E['BULK_MIB']} MiB", "bulk_out", "MBps", "MB/s", "{:,.0f}", False),
    (f"bulk kernel -> stack, {E['BULK_MIB']} MiB, utcp --offload (smoltcp plain)", "bulk_in_offload", "MBps", "MB/s", "{:,.0f}", False),
    (f"bulk stack -> kernel, {E['BULK_MIB']} MiB, utcp --offload (smoltcp plain)", "bulk_out_offload", "MBps", "MB/s", "{:,.0f}", False),
    (f"{E['PAR_FLOWS']} flows kernel -> stack, {E['BULK_MIB']} MiB in all", "par_in", "MBps", "MB/s", "{:,.0f}", False),
    (f"{E['PAR_FLOWS']} flows kernel -> stack, utcp --queues 1 on a multi-queue TUN, not pinned (smoltcp plain)", "par_in_mq1", "MBps", "MB/s", "{:,.0f}", False),
    (f"{E['PAR_FLOWS']} flows kernel -> stack, utcp --queues 2 on a multi-queue TUN, not pinned (smoltcp plain)", "par_in_mq", "MBps", "MB/s", "{:,.0f}", False),
    ("64-byte echo RTT p50", "rtt", "p50_us", "µs", "{:.1f}", False),
    ("64-byte echo RTT p99", "rtt", "p99_us", "µs", "{:.1f}", False),
    ("64-byte echo RTT p50, utcp --offload (smoltcp plain)", "rtt_offload", "p50_us", "µs", "{:.1f}", False),
    ("sequential connections (connect, 64 B echo, close)", "seqconn", "per_s", "/s", "{:,.0f}", False),
    ("sequential connections, utcp --offload (smoltcp plain)", "seqconn_offload", "per_s", "/s", "{:,.0f}", False),
    (f"{C} concurrent: connections opened", "conc", "open", "", "{:,.0f}", True),
    (f"{C} concurrent: time to open them, one after another", "conc", "connect_seconds", "s", "{:.2f}", False),
    (f"{C} concurrent: RSS growth per idle connection", "conc", "kib_per_conn", "KiB", "{:.1f}", True),
    (f"{C} concurrent: server RSS with all open / connections", "conc", "kib_total_per_conn", "KiB", "{:.1f}", True),
    (f"{C} concurrent: one echo round over all", "conc", "round_seconds", "s", "{:.3f}", False),
    (f"{C} concurrent: packets dropped at the TUN queue", "conc", "tx_dropped", "", "{:,.0f}", True),
]

notes = []
def note(stack, fig, vals):
    for i, v in enumerate(vals):
        if "error" in v:
            n = f"{stack} {fig}, run {i + 1}: {v['error']}"
            if n not in notes:
                notes.append(n)

def cell(fig, stack, key, fmt, partial):
    vals = load(fig, stack)
    note(stack, fig, vals)
    ok = [v for v in vals if "error" not in v]
    use = vals if partial else ok
    nums = [v[key] for v in use if v.get(key) is not None]
    failed = len(vals) - len(ok)
    if not nums:
        return None, f"failed ({failed} of {len(vals)} runs)" if failed else "no result"
    m = statistics.median(nums)
    s = fmt.format(m)
    if failed and partial:
        s += f" (runs failed part-way: {failed} of {len(vals)})"
    elif failed:
        s += f" ({failed} of {len(vals)} runs failed)"
    return m, s

RUN = E["FIGS_RUN"].split()
ROWS = [r for r in ROWS if r[1] in RUN]
lines = []
lines.append("| figure | unit | smoltcp | utcp | utcp / smoltcp |")
lines.append("|---|---|---|---|---|")
for label, fig, key, unit, fmt, partial in ROWS:
    ms, ss = cell(fig, "smoltcp", key, fmt, partial)
    mu, su = cell(fig, "utcp", key, fmt, partial)
    # No ratio against a zero (or a figure that rounds to zero).
    ratio = f"{mu / ms:.2f}" if (ms and mu is not None and ss.strip("0.,") != "") else "-"
    lines.append(f"| {label} | {unit} | {ss} | {su} | {ratio} |")
table = "\n".join(lines)
if notes:
    table += "\n\nFailed runs:\n\n" + "\n".join(f"- {n}" for n in notes)
raw = []
for fig in RUN:
    for stack in ("smoltcp", "utcp"):
        vals = load(fig, stack)
        keys = {"bulk_in": ["MBps"], "bulk_out": ["MBps"], "bulk_in_offload": ["MBps"],
                "bulk_out_offload": ["MBps"], "par_in": ["MBps"], "par_in_mq1": ["MBps"], "par_in_mq": ["MBps"], "rtt": ["p50_us", "p99_us"], "rtt_offload": ["p50_us", "p99_us"],
                "seqconn": ["per_s"], "seqconn_offload": ["per_s"], "conc": ["open", "connect_seconds", "kib_total_per_conn",
                                                "round_seconds", "tx_dropped"]}[fig]
        runs = []
        for v in vals:
            runs.append(", ".join(f"{k}={v[k]:.4g}" if isinstance(v.get(k), float) else f"{k}={v.get(k, '-')}"
                                  for k in keys if k in v) or "error")
        raw.append(f"- {fig} {stack}: " + "; ".join(runs))
rawtext = "\n".join(raw)
print(table)

if out:
    doc = f"""# Benchmarks: utcp and smoltcp side by side

Written by `scripts/bench.sh`; figures only, nothing is asserted.

## Run

- Command: `{E['CMDLINE']}`
- Date: {E['START']}; utcp at commit {E['COMMIT']}{E['DIRTY']}
- Machine: {E['NPROC']} CPUs ({E['CPU']}), Linux {E['KERNEL']}, {E['RUSTC']}
- Load average (1, 5, 15 min) at the start: {E['LOAD_START']}; at the end: {E['LOAD_END']}
  (the machine is shared: other work running at the same time inflates and scatters the figures)
- smoltcp {E['SMOLV']} in `bench/smoltcp-server` (its own Cargo project, built only by the script)
- Repetitions: {E['REPS']} per figure and stack, alternating between the stacks
  (odd repetitions utcp first, even ones smoltcp first); the table shows medians.

## Table

{table}

Ratios are utcp / smoltcp of the medians: above 1 is better for throughput and
connections/s, below 1 is better for times, RSS and drops. A row marked "runs
failed part-way" takes its median over runs that did not open all connections
(the figure is then for fewer connections); other rows use only complete runs.

Every run (in order):

{rawtext}

## Setup

- One network namespace created by the script, one TUN device `utcp0` in it
  (MTU 1500, queue length {E['QLEN']}, kernel side 10.77.0.1/24); the server under test answers for 10.77.0.2.
  Only one server is attached at a time; each measurement starts a fresh server
  and stops it afterwards.
- Servers pinned to CPU0 (`taskset -c 0`), the kernel-side client to CPU1.
  In the namespace: `net.ipv4.ip_local_port_range = 1024 65000`, `net.ipv4.tcp_tw_reuse = 1`.
- Clients: `bench/clients.py` (Python 3, stdlib), the same for both stacks:
  - bulk kernel -> stack: connect, send the bytes in 1 MiB `sendall`s, `shutdown(SHUT_WR)`,
    read until the server's EOF (it closes once its application has read everything);
    timed from before `connect` to that EOF.
  - bulk stack -> kernel: connect, read until EOF, check the byte count; timed from before
    `connect` to EOF.
  - echo RTT: one connection with TCP_NODELAY, 100 warm-up rounds, then {E['RTT_N']} rounds
    of 64 bytes out and 64 bytes back; p50 and p99 of the rounds.
  - sequential connections: {E['SEQ_N']} times connect, send 64 B, read the echo, close.
  - concurrent: open {E['CONC']} connections one after another, VmRSS of the server
    before (listening) and with all open (after it settles), the difference per connection;
    then 64 B sent on every connection and every echo read (selectors), timed; the TUN
    device's TX dropped counter before and after. Bounded: {E['CONC_CONNECT_TIMEOUT']} s to open,
    {E['CONC_TIMEOUT']} s for the round. "RSS per idle connection" is the growth of RSS from the
    listening server to all connections open; smoltcp's socket pool (buffers included) is
    allocated before the first sample, so its per-connection cost shows in the row
    "server RSS, all open, / connections" instead.
- Servers:
  - The flows rows: {E['PAR_FLOWS']} connections at once (`bench/clients.py pbulk-in`, one
    thread each) to the sink. `--queues 1` and `--queues 2`: a second TUN device `utcpq` made with
    `setup-tun.sh --multi-queue` (10.78.0.1/24), utcp with one stack shard per queue and
    not pinned (each shard's thread may use either CPU, shared with the client on CPU1);
    smoltcp as in the plain row.
  - The `--offload` rows: utcp opens the TUN with offload (`utcp --offload sink` /
    `source`: virtio-net headers, checksum offload, TSO; the kernel sends 64 KB
    super-packets), smoltcp runs as in the plain rows (it has no offload).
  - utcp: `utcp sink --port 9`, `utcp source --port 5001 --bytes BYTES` (copies zeros
    from a 64 KiB buffer into the stream, like smoltcp's source), `utcp echo --port 7`.
    Default `TcpConfig` (512 KiB receive and send buffers, Nagle on, 40 ms delayed ACK,
    CUBIC). Each of these servers is one thread serving every connection through `utcp::socket::Poll`, driving the device itself (the CLI default `--driver inline`; a fallback thread drives only when that thread has not for 10 ms).
  - smoltcp: `smoltcp-server sink 9`, `source 5001 BYTES` (copies zeros from a 64 KiB
    buffer into the socket), `echo 7 64` (RTT, sequential) and `echo 7 N+50` (concurrent):
    one thread, `iface.poll` then one pass over the sockets then smoltcp::phy::wait for
    the interface's poll delay. One socket per connection, a pool of listening sockets put back to
    LISTEN after close. Buffers: 256 KiB + 256 KiB for sink and source, 4 KiB + 4 KiB
    for echo (allocated for the whole pool at start). smoltcp's
    defaults otherwise (Nagle on, 10 ms delayed ACK).
"""
    with open(out, "w") as f:
        f.write(doc)
    print(f"bench.sh: wrote {out}", file=sys.stderr)
EOF
