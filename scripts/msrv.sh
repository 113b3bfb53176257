#!/usr/bin/env bash
# Build the whole workspace (all targets) with the declared rust-version, 1.85,
# so a newer toolchain cannot hide code or a dependency that needs more.
#
# Usage: scripts/msrv.sh [extra args for `cargo build`]
#
# The 1.85 toolchain comes from Debian bookworm's rustc-web/cargo-web packages,
# which install /usr/bin/rustc and /usr/bin/cargo (bookworm-security carries a
# newer version, so pin it):
#   V=1.85.0+dfsg3-1~deb12u3
#   apt-get install --no-install-recommends rustc-web=$V cargo-web=$V libstd-rust-web-dev=$V
# MSRV_CARGO, MSRV_RUSTC and MSRV_RUSTDOC point elsewhere if needed. The
# build goes to target/msrv so it does not disturb the normal target dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${0##*/}

case ${1:-} in
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

# The rust-version of the root package.
WANT=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n 1)
[[ -n $WANT ]] || die "no rust-version in $ROOT/Cargo.toml"

CARGO=${MSRV_CARGO:-/usr/bin/cargo}
RUSTC=${MSRV_RUSTC:-/usr/bin/rustc}
RUSTDOC=${MSRV_RUSTDOC:-/usr/bin/rustdoc}
HINT="install Rust $WANT: apt-get install --no-install-recommends rustc-web=1.85.0+dfsg3-1~deb12u3 cargo-web=1.85.0+dfsg3-1~deb12u3 libstd-rust-web-dev=1.85.0+dfsg3-1~deb12u3 (or set MSRV_CARGO/MSRV_RUSTC/MSRV_RUSTDOC)"

for tool in "$CARGO" "$RUSTC"; do
    [[ -x $tool ]] || die "$tool not found; $HINT"
done
# Both must really be $WANT (a rustup proxy or another rustc could sit there).
rustc_version=$("$RUSTC" --version) || die "'$RUSTC --version' failed; $HINT"
cargo_version=$("$CARGO" --version) || die "'$CARGO --version' failed; $HINT"
for v in "$rustc_version" "$cargo_version"; do
    [[ $v == *" $WANT."* ]] || die "expected version $WANT, found '$v'; $HINT"
done

echo "==> $rustc_version, $cargo_version"
echo "==> cargo build --workspace --all-targets --locked (target/msrv)"
cd "$ROOT"
# RUSTC/RUSTDOC: cargo would otherwise run the first rustc on PATH (rustup's).
# The lockfile (version 4) needs cargo >= 1.78.
RUSTC=$RUSTC RUSTDOC=$RUSTDOC CARGO_TARGET_DIR="$ROOT/target/msrv" \
    "$CARGO" build --workspace --all-targets --locked "$@"
echo "==> OK: the workspace builds with Rust $WANT"
