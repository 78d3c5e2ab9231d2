#!/usr/bin/env bash
# Builds the daemon's container image offline, from a built binary: an image of that binary and
# the shared libraries it links (nothing else: no shell, no package manager).
#   contrib/kubernetes/image/build.sh [BINARY] [TAG]
# BINARY defaults to target/release/seccomp-tracer, TAG to seccomp-tracer:dev. The image lands
# in Docker; for a containerd node: docker save TAG | ctr -n k8s.io images import -
set -euo pipefail
bin=${1:-target/release/seccomp-tracer}
tag=${2:-seccomp-tracer:dev}
[ -x "$bin" ] || { echo "build.sh: no executable at $bin (cargo build --release first)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/local/bin/seccomp-tracer"
# The loader and every library ldd resolves, at the same paths.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    install -D -m 0644 "$(readlink -f "$lib")" "$root$lib"
done
chmod 0755 "$root"/lib*/ld-linux* "$root"/lib64/ld-linux* 2>/dev/null || true
# Where the DaemonSet mounts its volumes (the root file system is read-only).
mkdir -p "$root/sys" "$root/proc" "$root/run/seccomp-tracer" "$root/var/lib/seccomp-tracer" \
    "$root/var/lib/kubelet/seccomp" "$root/tmp"
tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
        --change 'ENTRYPOINT ["/usr/local/bin/seccomp-tracer"]' \
        --change 'CMD ["daemon", "--engine=cri", "--state-dir=/var/lib/seccomp-tracer", "--socket=/run/seccomp-tracer/seccomp-tracer.sock"]' \
        --change 'LABEL org.opencontainers.image.title=seccomp-tracer' \
        - "$tag" >/dev/null
echo "built $tag from $bin"
