#!/usr/bin/env bash
# Create (or remove) the persistent TUN device that the utcp stack attaches to.
#
# The kernel side of the TUN gets an address (default 10.77.0.1/24); the utcp
# process opens the existing device by name and answers for another address in
# that subnet (by convention 10.77.0.2). With --netns the device lives inside a
# network namespace, so nothing ever leaves this machine's sandbox.
#
# Idempotent: running it twice (up or down) is fine.
set -euo pipefail

PROG=${0##*/}

usage() {
    cat <<EOF
Usage: $PROG [--dev NAME] [--addr CIDR] [--mtu N] [--netns NAME] [--multi-queue] [--down]

Create and configure a persistent TUN device for utcp.

Options:
  --dev NAME     TUN device name (default: utcp0)
  --addr CIDR    kernel-side address of the device (default: 10.77.0.1/24)
  --mtu N        MTU of the device (default: 1500)
  --netns NAME   put the device in network namespace NAME (created if missing,
                 with its loopback brought up)
  --multi-queue  create a multi-queue device (IFF_MULTI_QUEUE), for
                 utcp --queues N (one stack shard per queue); utcp without
                 --queues cannot attach to it
  --down         remove the device instead; with --netns also delete the
                 namespace
  -h, --help     show this help

Needs root (CAP_NET_ADMIN), the 'ip' tool (iproute2) and /dev/net/tun.
Example:
  sudo $PROG --netns utcp-demo
  sudo ip netns exec utcp-demo utcp server
  sudo $PROG --netns utcp-demo --down
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

DEV=utcp0
ADDR=10.77.0.1/24
MTU=1500
NETNS=
DOWN=0
MQ=0

need_arg() {
    # $1 = option name, $2 = number of remaining args (including the option)
    if [[ $2 -lt 2 ]]; then
        die "option $1 needs a value (see --help)"
    fi
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --dev)
            need_arg "$1" "$#"
            DEV=$2
            shift 2
            ;;
        --dev=*)
            DEV=${1#*=}
            shift
            ;;
        --addr)
            need_arg "$1" "$#"
            ADDR=$2
            shift 2
            ;;
        --addr=*)
            ADDR=${1#*=}
            shift
            ;;
        --mtu)
            need_arg "$1" "$#"
            MTU=$2
            shift 2
            ;;
        --mtu=*)
            MTU=${1#*=}
            shift
            ;;
        --netns)
            need_arg "$1" "$#"
            NETNS=$2
            shift 2
            ;;
        --netns=*)
            NETNS=${1#*=}
            shift
            ;;
        --multi-queue)
            MQ=1
            shift
            ;;
        --down)
            DOWN=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "$PROG: error: unknown argument '$1'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

# ---- validate arguments -----------------------------------------------------
if [[ -z $DEV || ${#DEV} -gt 15 || ! $DEV =~ ^[A-Za-z0-9_.-]+$ ]]; then
    die "invalid device name '$DEV' (1-15 characters of [A-Za-z0-9_.-])"
fi
if [[ ! $MTU =~ ^[0-9]+$ ]] || ((MTU < 68 || MTU > 65535)); then
    die "invalid MTU '$MTU' (expected an integer in 68..65535)"
fi
if [[ ! $ADDR =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]]; then
    die "invalid address '$ADDR' (expected IPv4 CIDR such as 10.77.0.1/24)"
fi
if [[ -n $NETNS && ! $NETNS =~ ^[A-Za-z0-9_.-]+$ ]]; then
    die "invalid namespace name '$NETNS' (use [A-Za-z0-9_.-])"
fi

# ---- environment checks -----------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
    die "must run as root (needs CAP_NET_ADMIN); try: sudo $0"
fi
if ! command -v ip >/dev/null 2>&1; then
    die "'ip' not found; install iproute2 (apt-get install iproute2)"
fi
if [[ $DOWN -eq 0 && ! -c /dev/net/tun ]]; then
    die "/dev/net/tun is missing; load the tun module (modprobe tun) or run where TUN devices are available"
fi

netns_exists() {
    [[ -e /var/run/netns/$1 ]] || [[ -e /run/netns/$1 ]]
}

# ip wrapper: runs inside the namespace when --netns was given.
IP=(ip)
if [[ -n $NETNS ]]; then
    IP=(ip -n "$NETNS")
fi

dev_exists() {
    "${IP[@]}" link show dev "$DEV" >/dev/null 2>&1
}

# ---- down ---------------------------------------------------------------------
if [[ $DOWN -eq 1 ]]; then
    if [[ -n $NETNS ]]; then
        if netns_exists "$NETNS"; then
            # Deleting the namespace destroys the device inside it as well.
            if dev_exists; then
                "${IP[@]}" tuntap del dev "$DEV" mode tun 2>/dev/null || true
            fi
            ip netns delete "$NETNS" || die "could not delete namespace '$NETNS'"
            echo "$PROG: removed namespace $NETNS (and $DEV in it)"
        else
            echo "$PROG: namespace $NETNS does not exist; nothing to do"
        fi
    else
        if dev_exists; then
            ip tuntap del dev "$DEV" mode tun || die "could not delete device '$DEV'"
            echo "$PROG: removed $DEV"
        else
            echo "$PROG: device $DEV does not exist; nothing to do"
        fi
    fi
    exit 0
fi

# ---- up -----------------------------------------------------------------------
if [[ -n $NETNS ]]; then
    if ! netns_exists "$NETNS"; then
        # Tolerate a concurrent creator: only fail if it still does not exist.
        ip netns add "$NETNS" 2>/dev/null || netns_exists "$NETNS" ||
            die "could not create namespace '$NETNS'"
    fi
    ip -n "$NETNS" link set lo up || die "could not bring up lo in namespace '$NETNS'"
fi

if dev_exists; then
    # Make sure an existing device of that name really is a TUN device.
    if ! "${IP[@]}" -d link show dev "$DEV" | grep -q 'tun type tun'; then
        die "device '$DEV' exists but is not a TUN (mode tun) device"
    fi
    # The kernel refuses a multi-queue attach to a single-queue device and
    # the other way round: say so now rather than when utcp starts.
    has_mq=0
    if "${IP[@]}" -d link show dev "$DEV" | grep -q ' multi_queue '; then
        has_mq=1
    fi
    if [[ $has_mq -ne $MQ ]]; then
        want=$([[ $MQ -eq 1 ]] && echo "multi-queue" || echo "single-queue")
        die "device '$DEV' exists but is not $want; remove it first ($PROG --dev $DEV${NETNS:+ --netns $NETNS} --down)"
    fi
else
    MQ_ARG=()
    if [[ $MQ -eq 1 ]]; then
        MQ_ARG=(multi_queue)
    fi
    "${IP[@]}" tuntap add dev "$DEV" mode tun "${MQ_ARG[@]}" ||
        die "could not create TUN device '$DEV' (is /dev/net/tun usable?)"
fi

"${IP[@]}" addr replace "$ADDR" dev "$DEV" || die "could not set address $ADDR on $DEV"
"${IP[@]}" link set "$DEV" mtu "$MTU" up || die "could not set mtu $MTU / bring up $DEV"

where=${NETNS:+ in namespace $NETNS}
kind=$([[ $MQ -eq 1 ]] && echo ", multi-queue" || true)
echo "$PROG: $DEV is up$where: kernel side $ADDR, mtu $MTU$kind"
