#!/usr/bin/env bash
# Installs what building and testing seccomp-tracer needs, idempotently: the eBPF toolchain
# pieces, a Docker engine (started in the background), and the tools the tests use (Chromium
# for the report page).
set -euo pipefail
log() { printf '[setup] %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "[setup] must run as root (it installs packages and starts dockerd)" >&2; exit 1; }

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# The test image copies /bin/busybox, so it must be the static build.
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need_apt+=(busybox-static); fi
command -v gcc >/dev/null || need_apt+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
command -v strace >/dev/null || need_apt+=(strace)
command -v python3 >/dev/null || need_apt+=(python3)
# tests/shell.rs: the completion scripts are checked by each shell, a man page rendered by man.
command -v man >/dev/null || need_apt+=(man-db)
command -v zsh >/dev/null || need_apt+=(zsh)
command -v fish >/dev/null || need_apt+=(fish)
[ -e /usr/share/bash-completion/bash_completion ] || need_apt+=(bash-completion)
# tests/tests/report.rs loads the report page in headless Chromium.
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (eBPF needs -Z build-std)"
  rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
  log "rustup component add rust-src --toolchain nightly"
  rustup component add rust-src --toolchain nightly
fi
if ! command -v bpf-linker >/dev/null; then
  log "cargo install bpf-linker@0.10.0 (about 2 minutes)"
  cargo install bpf-linker@0.10.0 --locked
fi

if ! mountpoint -q /sys/kernel/tracing; then
  mount -t tracefs nodev /sys/kernel/tracing || true
fi

if ! docker info >/dev/null 2>&1; then
  # dockerd uses /run/containerd/containerd.sock instead of starting its own containerd when
  # that file merely exists: a socket left by a killed test containerd (engines.sh) would
  # keep it from starting. Remove only a socket nothing answers on.
  sock=/run/containerd/containerd.sock
  if [ -S "$sock" ] && ! ctr --address "$sock" version >/dev/null 2>&1; then
    log "removing the stale $sock"
    rm -f "$sock"
  fi
  log "starting dockerd (log: /var/log/seccomp-tracer-dockerd.log)"
  nohup dockerd >/var/log/seccomp-tracer-dockerd.log 2>&1 &
  for _ in $(seq 1 180); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "[setup] dockerd did not come up; see /var/log/seccomp-tracer-dockerd.log" >&2; exit 1; }
fi
log "ready: $(docker version --format 'docker {{.Server.Version}}'), $(bpf-linker --version 2>/dev/null | head -1)"
