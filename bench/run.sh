#!/usr/bin/env bash
# The gateway's load test, on this machine, in one run.
#
# Installs what it needs once (oha into bench/.tools, nginx from the distribution), builds
# the release binaries it measures, and runs `router-bench run`: straight to the fake
# upstream, through nginx, and through the gateway, at every load. Arguments go to
# `router-bench run`, e.g.
#
#     bench/run.sh                                  # the full matrix, 10 s a scenario
#     bench/run.sh --duration 3 --loads c1,c16,r500
#     bench/run.sh --write BENCHMARKS.md            # also update the results section there
#     bench/run.sh --with-litellm --with-portkey    # also two other LLM gateways, for comparison
#
# `--with-litellm` installs LiteLLM's proxy (a pinned release, from PyPI) into a virtual
# environment under bench/.tools/litellm once; `--with-portkey` installs Portkey's gateway (a
# pinned release, from npm; it needs Node.js) under bench/.tools/portkey once. Each is then
# measured as one more hop in front of the same fake upstream.
#
# Results, logs and configs land in bench/results/<time>/. Run it on a quiet machine: the
# load generators, the fake upstream, nginx and the gateway all share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

tools="bench/.tools"
# The releases of the other gateways the comparison was made with; change them to measure
# others.
litellm_version="1.108.7"
portkey_version="1.15.2"
args=()
with_litellm=""
with_portkey=""
for arg in "$@"; do
    case "$arg" in
        --with-litellm) with_litellm=1 ;;
        --with-portkey) with_portkey=1 ;;
        *) args+=("$arg") ;;
    esac
done
# oha builds beside the gateway's release build rather than before it: on a fresh machine
# that saves the several minutes it would take alone.
oha_install=""
if [ ! -x "$tools/bin/oha" ] && ! command -v oha >/dev/null; then
    log "installing oha (the HTTP load generator) into $tools, beside the build — once; a few minutes (log: $tools/oha-install.log)"
    mkdir -p "$tools"
    cargo install oha --locked --root "$tools" > "$tools/oha-install.log" 2>&1 &
    oha_install=$!
    trap 'kill "$oha_install" 2>/dev/null || true' EXIT
fi

if [ ! -x /usr/sbin/nginx ]; then
    log "installing nginx (the reference reverse-proxy hop)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nginx-light || \
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nginx
fi

if [ -n "$with_litellm" ]; then
    venv="$tools/litellm"
    if ! "$venv/bin/litellm" --version 2>/dev/null | grep -q "$litellm_version"; then
        log "installing LiteLLM's proxy $litellm_version into $venv — once; a minute or two"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "litellm[proxy]==$litellm_version"
    fi
    args+=(--litellm "$venv/bin/litellm")
fi

if [ -n "$with_portkey" ]; then
    prefix="$tools/portkey"
    package="$prefix/node_modules/@portkey-ai/gateway"
    if ! grep -q "\"version\": \"$portkey_version\"" "$package/package.json" 2>/dev/null; then
        command -v npm >/dev/null || { echo "--with-portkey needs Node.js and npm" >&2; exit 1; }
        log "installing Portkey's gateway $portkey_version into $prefix — once"
        mkdir -p "$prefix"
        # With a later @hono/node-server its streamed answers fail on Node's immutable
        # response headers ("TypeError: immutable", Portkey-AI/gateway issue 1389).
        cat > "$prefix/package.json" <<JSON
{
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "$portkey_version" },
  "overrides": { "@hono/node-server": "1.13.8" }
}
JSON
        (cd "$prefix" && npm install --silent --no-audit --no-fund)
    fi
    args+=(--portkey "$package/build/start-server.js")
fi

log "building the release binaries (the first build takes a while)"
cargo build --release -p llm-router -p router-sim -p router-bench
if [ -n "$oha_install" ]; then
    log "waiting for oha's install to finish"
    if ! wait "$oha_install"; then
        tail -n 20 "$tools/oha-install.log" >&2
        echo "installing oha failed; its log is $tools/oha-install.log" >&2
        exit 1
    fi
    trap - EXIT
fi

read -r load _ < /proc/loadavg
log "load average now: $load (on $(nproc) cores) — the quieter, the truer the tails"
exec target/release/router-bench run "${args[@]}"
