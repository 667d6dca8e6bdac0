#!/usr/bin/env bash
# Builds the gateway with profile-guided optimisation (PGO): an instrumented build first,
# which serves a short run of the load test while it counts how often each branch and
# function runs; then the real build, which LLVM lays out and inlines from those counts.
# Hot code ends up together and cold code out of the way, so a request touches fewer
# instruction-cache lines — which matters most when it finds the caches cold, as a gateway
# at light load does after every idle spell.
#
#     bench/pgo.sh                       # → target/pgo/llm-router (about 15 minutes)
#     target/release/router-bench run --bin-dir target/pgo \
#         --build 'profile-guided build (`bench/pgo.sh`)'     # measure it
#
# Needs rustc's llvm-profdata (`rustup component add llvm-tools`) and oha; it installs
# both when they are missing. The profile is made here, from this source; nothing of it is
# committed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

host="$(rustc -vV | sed -n 's/^host: //p')"
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    log "installing rustc's LLVM tools (for llvm-profdata)"
    rustup component add llvm-tools
fi

if [ ! -x bench/.tools/bin/oha ] && ! command -v oha >/dev/null; then
    log "installing oha (the load generator of the training run) into bench/.tools"
    cargo install oha --locked --root bench/.tools
fi
cargo build --release -p router-sim -p router-bench

work="$PWD/target/pgo-work"
rm -rf "$work"
mkdir -p "$work/profiles" "$work/bin"

# `--target` keeps the flags off build scripts and proc macros: only the gateway is
# instrumented, and only the gateway is optimised from the profile.
log "building the instrumented gateway"
RUSTFLAGS="-Cprofile-generate=$work/profiles" CARGO_TARGET_DIR=target/pgo-generate \
    cargo build --release --target "$host" -p llm-router --bin llm-router

# The training run: every path the load test takes (named and `auto` requests, the judge,
# streams, the analyze API), short. The gateway writes its counts when it exits, and
# router-bench stops every gateway gracefully.
log "serving a short load test with it"
ln -sf "$PWD/target/pgo-generate/$host/release/llm-router" "$work/bin/llm-router"
ln -sf "$PWD/target/release/router-sim" "$work/bin/router-sim"
LLVM_PROFILE_FILE="$work/profiles/gateway-%p-%m.profraw" \
    target/release/router-bench run --bin-dir "$work/bin" --out "$work/run" --no-nginx \
    --duration 3 --loads c1,c16,r1000 --streams 200 >/dev/null
"$profdata" merge -o "$work/merged.profdata" "$work/profiles"
# Named by its content, so that a new profile changes the flags and cargo rebuilds every
# crate from it rather than only those whose source changed.
profile="$PWD/target/pgo-$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata"
rm -f target/pgo-*.profdata
mv "$work/merged.profdata" "$profile"

log "building the gateway from the profile"
RUSTFLAGS="-Cprofile-use=$profile" CARGO_TARGET_DIR=target/pgo-use \
    cargo build --release --target "$host" -p llm-router --bin llm-router

mkdir -p target/pgo
cp "target/pgo-use/$host/release/llm-router" target/pgo/llm-router
ln -sf "$PWD/target/release/router-sim" target/pgo/router-sim
log "done: target/pgo/llm-router"
