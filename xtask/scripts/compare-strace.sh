#!/usr/bin/env bash
# README comparison: a profile from an strace-based script (as in Jessie Frazelle's 2016 post)
# versus seccomp-tracer's, for the same Redis workload. Needs `cargo xtask images` first.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=$here/target/debug/seccomp-tracer
work=$(mktemp -d /tmp/compare-strace.XXXX)
cleanup() { docker rm -f cmp-strace cmp-tracer cmp-check >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
load() {
  python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.create_connection((sys.argv[1], 6379), timeout=5); break
    except OSError:
        time.sleep(0.1)
for i in range(2000):
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n")
    buf = b""
    while b"PONG" not in buf:
        buf += s.recv(4096)
print("ok")
PY
}
ip() { docker inspect -f '{{.NetworkSettings.IPAddress}}' "$1"; }
redis=(redis-server --protected-mode no --save "")

# 1. strace -ff inside the container (the host's strace and its libraries mounted in).
mounts=(-v /usr/bin/strace:/usr/bin/strace:ro)
for lib in $(ldd /usr/bin/strace | awk '/=> \//{print $3}'); do
  mounts+=(-v "$(readlink -f "$lib"):$lib:ro")
done
docker run -d --name cmp-strace --cap-add SYS_PTRACE "${mounts[@]}" st-bookworm \
  strace -ff -o /tmp/trace "${redis[@]}" >/dev/null
sleep 1; load "$(ip cmp-strace)" >/dev/null; docker exec cmp-strace /probe direct 100 >/dev/null
docker exec cmp-strace sh -c 'cat /tmp/trace.*' > "$work/strace.log"
# The post's extraction: every `name(` in the log, kept if it is a syscall name.
grep -oE '^[a-z_0-9]+\(' "$work/strace.log" | tr -d '(' | sort -u > "$work/strace.names"
python3 - "$work/strace.names" "$work/strace.json" <<'PY'
import json, sys
names = [n.strip() for n in open(sys.argv[1]) if n.strip()]
json.dump({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
           "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
           "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}, open(sys.argv[2], "w"), indent=1)
PY

# 2. seccomp-tracer on the same workload, attached to the running container with --restart.
docker run -d --name cmp-tracer st-bookworm "${redis[@]}" >/dev/null
"$bin" record cmp-tracer --restart --duration 15 -o "$work/tracer.json" > "$work/tracer.log" 2>&1 &
rec=$!; sleep 4; load "$(ip cmp-tracer)" >/dev/null; docker exec cmp-tracer /probe direct 100 >/dev/null; wait $rec
python3 -c "import json;print('\n'.join(sum((r['names'] for r in json.load(open('$work/tracer.json'))['syscalls'] if r['action']=='SCMP_ACT_ALLOW'), [])))" | sort -u > "$work/tracer.names"

check() { # does a fresh Redis start and serve under profile $1?
  docker rm -f cmp-check >/dev/null 2>&1 || true
  if ! docker run -d --name cmp-check --security-opt "seccomp=$1" st-bookworm "${redis[@]}" >/dev/null 2>"$work/err"; then
    echo "does not start: $(tail -c 160 "$work/err" | tr '\n' ' ')"; return
  fi
  sleep 2
  if [ "$(docker inspect -f '{{.State.Running}}' cmp-check)" != true ]; then
    echo "exits at once: $(docker logs cmp-check 2>&1 | tail -1)"; return
  fi
  if load "$(ip cmp-check)" >/dev/null 2>&1; then echo "starts and serves"; else echo "starts, does not serve"; fi
}
echo "| approach | syscalls in profile | fresh container under it |"
echo "|---|---|---|"
echo "| strace -ff script (seed 003) | $(wc -l < "$work/strace.names") | $(check "$work/strace.json") |"
echo "| seccomp-tracer --restart | $(wc -l < "$work/tracer.names") | $(check "$work/tracer.json") |"
echo
echo "only in seccomp-tracer's: $(comm -13 "$work/strace.names" "$work/tracer.names" | tr '\n' ' ')"
echo "only in strace's: $(comm -23 "$work/strace.names" "$work/tracer.names" | tr '\n' ' ')"
echo "(work files: $work)"
