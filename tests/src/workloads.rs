//! Workloads driven from the host: the probe fixture in a cgroup, Redis and HTTP clients.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use crate::harness::sh;

/// The probe fixture built for the host by the images script.
pub const PROBE: &str = "/var/tmp/seccomp-tracer-images/bin/probe";

/// Runs the host's probe binary with `args` inside cgroup `cg` (joined before the exec); it
/// must succeed.
pub fn probe_in_cgroup(cg: &Path, args: &str) {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {PROBE} {args}",
        cg.display()
    );
    let out = sh(Command::new("sh").args(["-c", &script]));
    assert!(
        out.status.success(),
        "probe {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP connection to `addr`, retried for 30 s while the server starts; 5 s read timeout.
pub fn connect(addr: &str) -> TcpStream {
    let t0 = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                return s;
            }
            Err(e) if t0.elapsed() > Duration::from_secs(30) => panic!("connect {addr}: {e}"),
            Err(_) => sleep(Duration::from_millis(200)),
        }
    }
}

/// `n` SET/GET round trips to Redis; returns the last reply.
pub fn redis_load(ip: &str, n: usize) -> String {
    let mut s = connect(&format!("{ip}:6379"));
    let mut buf = [0u8; 4096];
    let mut last = String::new();
    for i in 0..n {
        let cmd = format!(
            "*3\r\n$3\r\nSET\r\n$5\r\nkey{:02}\r\n$5\r\nv{:04}\r\n*1\r\n$4\r\nPING\r\n",
            i % 100,
            i % 10000
        );
        s.write_all(cmd.as_bytes()).expect("redis write");
        let mut got = String::new();
        while !got.contains("PONG") {
            let k = s.read(&mut buf).expect("redis read");
            assert!(k > 0, "redis closed the connection");
            got.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        last = got;
    }
    last
}

/// `GET /` over HTTP/1.0 on port 80 of `ip`; the whole response.
pub fn http_get(ip: &str) -> String {
    let mut s = connect(&format!("{ip}:80"));
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .expect("http write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
