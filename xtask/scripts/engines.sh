#!/usr/bin/env bash
# Sets up the container engines beside Docker that the end-to-end tests drive, idempotently:
# rootful Podman with crun (cgroupfs manager, file events: there is no systemd), and a
# containerd of its own with the CRI plugin at /run/containerd/containerd.sock, started in
# the background. Run after setup.sh (Docker first: a dockerd started while
# /run/containerd/containerd.sock answers would use that containerd instead of its own).
# Never edits /etc/containerd/config.toml and never deletes /run/containerd (it also holds
# the shim sockets of Docker's containerd). Fails with one line when something can't be set up.
set -euo pipefail
log() { printf '[engines] %s\n' "$*"; }
die() { printf '[engines] %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts containerd)"

conf_dir=/etc/seccomp-tracer-tests
cri_conf=$conf_dir/containerd.toml
cri_log=/var/log/seccomp-tracer-containerd.log
cri_pid=/run/seccomp-tracer-containerd.pid
cri_sock=/run/containerd/containerd.sock
# The image the CRI plugin runs every pod sandbox from; images-engines.sh imports it.
pause_image=docker.io/library/st-pause:latest

# --- Podman and crun -------------------------------------------------------------------
# Named explicitly: runc, already present through docker.io, would satisfy podman's
# dependency on an OCI runtime, and the issue's verified set-up is crun.
need_apt=()
command -v podman >/dev/null || need_apt+=(podman)
command -v crun >/dev/null || need_apt+=(crun)
command -v containerd >/dev/null || need_apt+=(containerd)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install --no-install-recommends ${need_apt[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null \
    || die "apt-get install ${need_apt[*]} failed"
fi

# Rootful podman asks for nofile=1048576, above this host's hard limit, and root here has no
# CAP_SYS_RESOURCE to raise it: ask for what the host allows.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
mkdir -p /etc/containers
containers_conf=$(cat <<EOF
# Written by seccomp-tracer's xtask/scripts/engines.sh (no systemd on this host).
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOF
)
if [ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$containers_conf" ]; then
  log "writing /etc/containers/containers.conf (cgroupfs, file events, crun, nofile=$nofile)"
  printf '%s\n' "$containers_conf" >/etc/containers/containers.conf
fi

# crun refuses a hybrid hierarchy while cgroup2 still offers a controller that no v1
# hierarchy has (here: hugetlb). Mounting that controller's v1 hierarchy moves it there;
# Docker (runc) keeps working. Nothing to do on a pure cgroup2 or pure v1 host.
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && mountpoint -q /sys/fs/cgroup/unified; then
  for ctrl in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    if ! awk -v c="$ctrl" '$3=="cgroup" && $4 ~ "(^|,)"c"(,|$)" {f=1} END {exit !f}' /proc/mounts; then
      log "mounting the cgroup v1 $ctrl hierarchy at /sys/fs/cgroup/$ctrl (crun refuses hybrid cgroups otherwise)"
      mkdir -p "/sys/fs/cgroup/$ctrl"
      mount -t cgroup -o "$ctrl" cgroup "/sys/fs/cgroup/$ctrl" \
        || die "cannot mount the cgroup v1 $ctrl hierarchy that crun needs on this hybrid host"
    fi
  done
fi
podman info >/dev/null 2>&1 || die "podman does not work: $(podman info 2>&1 | tail -1)"

# --- containerd with CRI ---------------------------------------------------------------
mkdir -p "$conf_dir/cni"
# Podman ships a CNI config in /etc/cni/net.d: an empty directory keeps the CRI plugin off it
# (host-network pods need no CNI).
cri_toml=$(cat <<EOF
# Written by seccomp-tracer's xtask/scripts/engines.sh: a containerd with CRI for the tests,
# separate from Docker's (which runs its own at /run/docker/containerd).
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "$cri_sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Without it RunPodSandbox fails: "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$conf_dir/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
EOF
)
if [ "$(cat "$cri_conf" 2>/dev/null)" != "$cri_toml" ]; then
  log "writing $cri_conf"
  printf '%s\n' "$cri_toml" >"$cri_conf"
  pid=$(cat "$cri_pid" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -q "$cri_conf" "/proc/$pid/cmdline" 2>/dev/null; then
    log "restarting containerd (pid $pid) for its new configuration"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do [ -e "/proc/$pid" ] || break; sleep 1; done
  fi
fi

cri_ok() { ctr --address "$cri_sock" plugins ls 2>/dev/null | grep -Eq 'io\.containerd\.grpc\.v1\s+cri\s.*\sok'; }
if ! cri_ok; then
  if ctr --address "$cri_sock" version >/dev/null 2>&1; then
    die "a containerd without the CRI plugin answers at $cri_sock (not ours: stop it, or start it with $cri_conf)"
  fi
  log "starting containerd --config $cri_conf (log: $cri_log)"
  # Its own session: it outlives this script and the test run, as dockerd does.
  setsid nohup containerd --config "$cri_conf" >>"$cri_log" 2>&1 </dev/null &
  echo $! >"$cri_pid"
  for _ in $(seq 1 60); do cri_ok && break; sleep 1; done
  cri_ok || die "containerd with CRI did not come up at $cri_sock; see $cri_log"
fi
log "ready: $(podman --version), $(crun --version | head -1), $(containerd --version | awk '{print "containerd", $3}') with CRI at unix://$cri_sock"
