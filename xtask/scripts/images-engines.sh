#!/usr/bin/env bash
# Loads the offline test images (built into Docker by images.sh) into Podman and into the CRI
# containerd's k8s.io namespace, and builds st-pause, the CRI plugin's sandbox image (a static
# pause program: there is no registry). Reloads an image only when Docker's copy changed.
set -euo pipefail
log() { printf '[images-engines] %s\n' "$*"; }
die() { printf '[images-engines] %s\n' "$*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/../../tests/fixtures
work=${SECCOMP_TRACER_IMAGES:-/var/tmp/seccomp-tracer-images}
stamps=/var/lib/seccomp-tracer-tests/loaded
cri_sock=/run/containerd/containerd.sock
mkdir -p "$work/bin" "$work/pause" "$stamps"

gcc -O2 -static -o "$work/bin/pause" "$fixtures/pause.c"
stamp=$(cat "$fixtures/pause.c" "$0" | sha256sum | cut -c1-12)
if [ "$(docker image inspect -f '{{index .Config.Labels "fixtures"}}' st-pause 2>/dev/null || true)" != "$stamp" ]; then
  log "building st-pause"
  cp "$work/bin/pause" "$work/pause/pause"
  tar -C "$work/pause" -c pause | docker import --change "LABEL fixtures=$stamp" \
    --change 'ENTRYPOINT ["/pause"]' - st-pause >/dev/null
fi

# load ENGINE IMAGE: Docker's image into ENGINE unless that exact image id is there already.
load() {
  local engine=$1 image=$2 id present
  id=$(docker image inspect -f '{{.Id}}' "$image") || die "docker has no image $image: run images.sh first"
  case $engine in
    podman) present=$(podman image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
            [ "sha256:$present" = "$id" ] || [ "$present" = "$id" ] && return 0 ;;
    cri) ctr --address "$cri_sock" -n k8s.io images ls -q | grep -qx "docker.io/library/$image:latest" \
           && [ "$(cat "$stamps/cri-$image" 2>/dev/null)" = "$id" ] && return 0 ;;
  esac
  log "loading $image into $engine"
  case $engine in
    podman) docker save "$image" | podman load -q >/dev/null || die "podman load of $image failed" ;;
    cri) docker save "$image" | ctr --address "$cri_sock" -n k8s.io images import - >/dev/null \
           || die "ctr -n k8s.io images import of $image failed (is containerd up? run engines.sh)"
         echo "$id" >"$stamps/cri-$image" ;;
  esac
}

for image in st-busybox st-bookworm; do load podman "$image"; done
for image in st-pause st-busybox st-bookworm; do load cri "$image"; done
log "images ready in podman and in containerd (k8s.io): st-busybox st-bookworm, sandbox st-pause"
