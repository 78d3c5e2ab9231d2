#!/usr/bin/env bash
# The main job, end to end: learn a Redis container's profile while it serves traffic, prove
# the profile runs a fresh Redis, and that it refuses what Redis never did.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=$here/target/debug/seccomp-tracer
out=$here/demo-output
name=seccomp-demo-redis
mkdir -p "$out"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { docker rm -f "$name" "$name-learned" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

nr() { python3 - "$1" <<'PY'
import re, sys
text = open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read()
print(re.search(r"#define __NR_%s (\d+)" % sys.argv[1], text).group(1))
PY
}
load() { # N SET+GET round trips against $1:6379
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
ip, n = sys.argv[1], int(sys.argv[2])
for _ in range(100):
    try:
        s = socket.create_connection((ip, 6379), timeout=5); break
    except OSError:
        time.sleep(0.1)
for i in range(n):
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%d\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" % (len(str(i)), i))
    buf = b""
    while buf.count(b"\r\n") < 3:
        buf += s.recv(4096)
print("redis answered %d SET/GET pairs" % n)
PY
}
ip() { docker inspect -f '{{.NetworkSettings.IPAddress}}' "$1"; }

say "1. A Redis container is running (started before we attach)"
docker run -d --name "$name" st-bookworm redis-server --protected-mode no --save "" >/dev/null
sleep 1; load "$(ip $name)" 10

say "2. Record it for 20 s: --restart covers its startup; traffic, and one mbind (refused by Docker's default)"
"$bin" record "$name" --restart --duration 20 -o "$out/redis.json" > "$out/record.log" 2>&1 &
rec=$!
sleep 5
load "$(ip $name)" 5000
docker exec "$name" /probe direct "$(nr mbind)" >/dev/null
wait $rec
grep -v '^[0-9:.]* [a-z-]*  [a-z_0-9]*$' "$out/record.log" || true
echo "(first-sighting lines: $(grep -c '^[0-9:.]* [a-z-]*  [a-z_0-9]*$' "$out/record.log"); full log: $out/record.log)"

say "3. The learned profile: $(python3 -c "import json;print(len(set(sum((r['names'] for r in json.load(open('$out/redis.json'))['syscalls'] if r['action']=='SCMP_ACT_ALLOW'), []))))") syscalls allowed (Docker's default allows about 305 on x86_64; seccomp-tracer explain compares the two)"

say "4. A fresh Redis runs under it and serves"
docker run -d --name "$name-learned" --security-opt "seccomp=$out/redis.json" st-bookworm \
  redis-server --protected-mode no --save "" >/dev/null
sleep 1
load "$(ip $name-learned)" 1000
docker inspect -f 'state: running={{.State.Running}}' "$name-learned"

say "5. A call Redis never made (getcpu) is refused with EPERM under it, allowed under Docker's default"
printf 'learned profile: '; docker run --rm --network none --security-opt "seccomp=$out/redis.json" st-bookworm /rawcall "$(nr getcpu)"
printf "Docker's default: "; docker run --rm --network none st-bookworm /rawcall "$(nr getcpu)"
say "6. A page to review it with a colleague: the learning curve, the calls by what they do, what goes beyond Docker's default"
"$bin" report "$out/redis.json" -o "$out/redis.html"
say "Done: profile in $out/redis.json, its report in $out/redis.html"
