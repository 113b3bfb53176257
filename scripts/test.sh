#!/usr/bin/env bash
# Run utcp's full check: formatting, clippy and the test suite (unit tests plus
# the interop tests that talk to the kernel's TCP over a TUN device inside
# private network namespaces).
#
# Usage: sudo scripts/test.sh [args for `cargo test --release` instead of the default:
#        the whole workspace, then the TUN tests api, interop, interop_loss, interop_offload, interop_mq,
#        forward by name, then scripts/forward-demo.sh]
#   e.g. sudo scripts/test.sh --test interop -- --nocapture
#
# The interop tests need root, /dev/net/tun and netcat-openbsd; they fail (they
# are never skipped) when these are missing, so this script checks up front.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

case ${1:-} in
    -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

# ---- preflight -------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] ||
    die "must run as root: the interop tests create network namespaces and TUN devices (sudo $0)"
[[ -c /dev/net/tun ]] ||
    die "/dev/net/tun is missing: the interop tests need TUN devices (try: modprobe tun)"
command -v ip >/dev/null 2>&1 || die "'ip' not found: apt-get install iproute2"
command -v nc >/dev/null 2>&1 || die "'nc' not found: apt-get install netcat-openbsd"
nc -h 2>&1 | grep -q -- '-N' ||
    die "'nc' is not netcat-openbsd (no -N option): apt-get install netcat-openbsd"
command -v ping >/dev/null 2>&1 || die "'ping' not found: apt-get install iputils-ping"
command -v ss >/dev/null 2>&1 || die "'ss' not found: apt-get install iproute2"
command -v nft >/dev/null 2>&1 || die "'nft' not found: apt-get install nftables (the loss tests drop packets with it)"
command -v tshark >/dev/null 2>&1 || die "'tshark' not found: apt-get install tshark (the --pcap test reads the capture with it)"
command -v microsocks >/dev/null 2>&1 || die "'microsocks' not found: apt-get install microsocks (the relay's SOCKS5 test)"
command -v cargo >/dev/null 2>&1 || die "'cargo' not found: install the Rust toolchain"

# Actually try the kernel features once, so a sandbox that has the device node
# but refuses to use it fails here with a clear message.
probe_ns=utcp-probe-$$
if ! "$ROOT/scripts/setup-tun.sh" --netns "$probe_ns" >/dev/null; then
    ip netns delete "$probe_ns" 2>/dev/null || true
    die "could not create a network namespace with a TUN device (see the error above)"
fi
"$ROOT/scripts/setup-tun.sh" --netns "$probe_ns" --down >/dev/null

cd "$ROOT"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo clippy --all-targets --features tokio -- -D warnings"
cargo clippy --all-targets --features tokio -- -D warnings
echo "==> cargo doc --no-deps --lib (rustdoc warnings are errors: broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib
# The library and the command line without the default feature "forward"
# (and so without tokio): what `default-features = false` users build.
echo "==> cargo clippy --lib --bins --no-default-features -- -D warnings"
cargo clippy --lib --bins --no-default-features -- -D warnings
# --all-targets skips the `test = false` TUN tests: name them (compiling
# them needs no root).
echo "==> cargo clippy --features tokio --test api --test interop ... --test tokio_api -- -D warnings"
cargo clippy --features tokio --test api --test interop --test interop_loss --test interop_offload \
    --test interop_mq --test forward --test tokio_api -- -D warnings

# The TUN tests (api, interop, interop_loss, interop_offload, interop_mq, forward) are `test = false` in Cargo.toml,
# so that a plain `cargo test` runs the sans-IO suite as a normal user: name
# them here. With arguments, they choose what runs.
TUN_TESTS=(--test api --test interop --test interop_loss --test interop_offload --test interop_mq
    --test forward)
if [[ $# -gt 0 ]]; then
    echo "==> cargo test --release --workspace $*"
    cargo test --release --workspace "$@"
else
    echo "==> cargo test --release --workspace (the sans-IO suite)"
    cargo test --release --workspace
    echo "==> cargo test --release --features tokio --doc (the tokio API's doc example compiles)"
    cargo test --release --features tokio --doc
    echo "==> cargo test --release ${TUN_TESTS[*]} (root, TUN, the kernel's TCP)"
    cargo test --release "${TUN_TESTS[@]}"
    echo "==> cargo test --release --features tokio --test tokio_api (root, TUN)"
    cargo test --release --features tokio --test tokio_api
    # The socket API once more with application threads driving the device
    # (utcp::socket::Driver::Inline; the run above used the driver thread).
    echo "==> UTCP_TEST_DRIVER=inline cargo test --release --test api"
    UTCP_TEST_DRIVER=inline cargo test --release --test api
    echo "==> UTCP_TEST_DRIVER=inline cargo test --release --features tokio --test tokio_api"
    UTCP_TEST_DRIVER=inline cargo test --release --features tokio --test tokio_api
    # The relay's demo, end to end in its three namespaces (issue 11).
    echo "==> scripts/forward-demo.sh"
    bash scripts/forward-demo.sh
fi
