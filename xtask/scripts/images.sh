#!/usr/bin/env bash
# Builds the test images offline (there is no registry): st-busybox (busybox-static) and
# st-bookworm (debootstrap minbase with redis-server and nginx-light), both carrying the
# test fixtures /probe and /rawcall. Rebuilds only what changed.
set -euo pipefail
log() { printf '[images] %s\n' "$*"; }
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/../../tests/fixtures
work=${SECCOMP_TRACER_IMAGES:-/var/tmp/seccomp-tracer-images}
mkdir -p "$work/bin"

gcc -O2 -static -pthread -o "$work/bin/probe" "$fixtures/probe.c"
gcc -O2 -static -nostdlib -fno-stack-protector -o "$work/bin/rawcall" "$fixtures/rawcall.c"
stamp=$(cat "$fixtures/probe.c" "$fixtures/rawcall.c" "$0" | sha256sum | cut -c1-12)

current() { docker image inspect -f '{{index .Config.Labels "fixtures"}}' "$1" 2>/dev/null || true; }

if [ "$(current st-busybox)" != "$stamp" ]; then
  log "building st-busybox"
  root=$work/busybox
  rm -rf "$root" && mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for app in $("$root/bin/busybox" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
  done
  cp "$work/bin/probe" "$work/bin/rawcall" "$root/"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import --change "LABEL fixtures=$stamp" - st-busybox >/dev/null
fi

if [ "$(current st-bookworm)" != "$stamp" ]; then
  root=$work/bookworm
  if [ ! -x "$root/usr/bin/redis-server" ] || [ ! -x "$root/usr/sbin/nginx" ]; then
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "debootstrap bookworm with redis-server and nginx-light from $mirror (about a minute)"
    rm -rf "$root"
    debootstrap --variant=minbase --include=redis-server,nginx-light bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  fi
  cp "$work/bin/probe" "$work/bin/rawcall" "$root/"
  log "importing st-bookworm"
  tar -C "$root" -c . | docker import --change "LABEL fixtures=$stamp" - st-bookworm >/dev/null
fi
log "images ready: st-busybox st-bookworm (fixtures $stamp)"
