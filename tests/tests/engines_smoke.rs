//! The engines beside Docker that the tests drive: rootful Podman (crun, cgroupfs manager) and
//! containerd's CRI plugin (pods run as the kubelet runs them). These prove the harness and
//! show where each engine puts its cgroups and how it enforces a profile; they print what they
//! find for the reader. Needs root and the set-up of `cargo xtask setup`; fails (never skips)
//! without them.

use std::{path::PathBuf, thread::sleep, time::Duration};

use e2e::{
    cgroup2_path_of, cgroup2_root, cgroup_v1_path_of, nr, podman_errno_under, CriPod, CriSeccomp,
    PodmanContainer, Qos,
};

/// A profile that refuses every call but `allow` with EPERM.
fn errno_profile(allow: &[&str]) -> String {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}],
    })
    .to_string()
}

/// What crun 1.8 calls after installing the filter, then what `/rawcall` needs.
const CRUN_AFTER_FILTER: [&str; 11] = [
    "prctl",
    "setresgid",
    "setresuid",
    "capset",
    "rt_sigprocmask",
    "rt_sigaction",
    "write",
    "close",
    "pselect6",
    "read",
    "execve",
];

fn write_profile(dir: &str, name: &str, json: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("profile dir");
    let p = PathBuf::from(dir).join(name);
    std::fs::write(&p, json).expect("write profile");
    p
}

#[test]
fn podman_container_lands_in_libpod_parent_in_every_hierarchy_and_exec_joins_it() {
    e2e::preflight();
    let c = PodmanContainer::busybox("st-e2e-podman-smoke", "sleep 600", None);
    let id = c.id();
    let pid = c.pid();
    let path = cgroup2_path_of(pid);
    let dir = cgroup2_root().join(path.trim_start_matches('/'));
    println!(
        "podman container {id}: pid {pid}, cgroup2 {}",
        dir.display()
    );
    assert_eq!(path, format!("/libpod_parent/libpod-{id}"));
    assert!(dir.is_dir(), "{} missing", dir.display());
    assert_eq!(
        cgroup_v1_path_of(pid, "memory").as_deref(),
        Some(path.as_str())
    );
    // `podman exec` (crun exec) puts the new process into the container's cgroup.
    let exec_cg = c.exec(&["cat", "/proc/self/cgroup"]);
    println!("podman exec'd process:\n{exec_cg}");
    assert!(exec_cg.contains(&format!("0::{path}")), "{exec_cg}");
}

#[test]
fn podman_runs_under_a_seccomp_file_and_refuses_what_it_does_not_allow() {
    e2e::preflight();
    let dir = "/tmp/seccomp-tracer-e2e-podman-seccomp";
    let mut allow: Vec<&str> = CRUN_AFTER_FILTER.to_vec();
    allow.push("exit_group");
    let tight = write_profile(dir, "tight.json", &errno_profile(&allow));
    assert_eq!(podman_errno_under(&tight, "getcpu"), "errno=1");
    allow.push("getcpu");
    let with = write_profile(dir, "with-getcpu.json", &errno_profile(&allow));
    assert_eq!(podman_errno_under(&with, "getcpu"), "errno=0");
    // A `podman exec`'d process runs under the container's profile too.
    let refuse = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcpu"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    let refuse = write_profile(dir, "refuse-getcpu.json", &refuse.to_string());
    let c = PodmanContainer::busybox("st-e2e-podman-exec-seccomp", "sleep 600", Some(&refuse));
    assert_eq!(c.exec(&["/rawcall", &nr("getcpu").to_string()]), "errno=1");
    drop(c);
    // crun resets signal handlers and waits for its parent (pselect6) after installing the
    // filter: without either call the container never starts, each with its own message.
    for (call, message) in [
        ("pselect6", "failed: exit status 1"),
        ("rt_sigaction", "crun: read from the init process"),
    ] {
        let without: Vec<&str> = allow.iter().copied().filter(|c| *c != call).collect();
        let broken = write_profile(dir, "broken.json", &errno_profile(&without));
        let c = PodmanContainer::claim("st-e2e-podman-broken");
        let out = std::process::Command::new("podman")
            .args(["run", "-d", "--name", &c.name, "--network", "none"])
            .arg("--security-opt")
            .arg(format!("seccomp={}", broken.display()))
            .args(["st-busybox", "/rawcall", &nr("getcpu").to_string()])
            .output()
            .expect("podman");
        let err = String::from_utf8_lossy(&out.stderr);
        println!("without {call}: {} {err}", out.status);
        assert!(
            !out.status.success() && err.contains(message),
            "{call}: {err}"
        );
    }
}

fn cri_pod_container_runs_under(qos: Qos, name: &str, qos_dir: &str) {
    e2e::preflight();
    let pod = CriPod::run(name, qos);
    let cmd = ["sleep", "600"];
    let id = pod
        .start("main", &cmd, 0, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let st = pod.status(&id);
    let pid = st.verbose.pid.expect("a running container has a pid");
    let cg_path = st.verbose.cgroups_path.clone().expect("cgroupsPath");
    let expected = format!("/kubepods/{qos_dir}/pod{}/{id}", pod.uid);
    println!("CRI container {id}: pid {pid}, cgroupsPath {cg_path}");
    assert_eq!(cg_path, expected);
    assert_eq!(
        pod.cgroup_parent(),
        format!("/kubepods/{qos_dir}/pod{}", pod.uid)
    );
    let path = cgroup2_path_of(pid);
    let dir = cgroup2_root().join(path.trim_start_matches('/'));
    println!("  cgroup2 {}", dir.display());
    assert_eq!(path, expected);
    assert!(dir.is_dir());
    // ExecSync'd processes join the container's cgroup (runc exec).
    let out = pod.exec_sync(&id, &["cat", "/proc/self/cgroup"]);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("  ExecSync'd process:\n{text}");
    assert_eq!(out.exit_code, 0);
    assert!(text.contains(&format!("0::{expected}")), "{text}");
    // The kubelet's restart: a new container, same name, attempt + 1.
    let id2 = pod.restart(&id, "main", &cmd, 1);
    assert_ne!(id2, id);
    let st2 = pod.status(&id2);
    assert_eq!(st2.status.metadata.as_ref().map(|m| m.attempt), Some(1));
    assert_eq!(
        st2.status.labels.get(cri_client::labels::CONTAINER_NAME),
        Some(&"main".to_string())
    );
    let pid2 = st2.verbose.pid.expect("pid after restart");
    assert_eq!(
        cgroup2_path_of(pid2),
        format!("/kubepods/{qos_dir}/pod{}/{id2}", pod.uid)
    );
}

#[test]
fn cri_besteffort_pod_container_has_pid_and_cgroups_path_and_follows_exec_and_restart() {
    cri_pod_container_runs_under(Qos::BestEffort, "st-e2e-cri-besteffort", "besteffort");
}

#[test]
fn cri_burstable_pod_container_lands_under_kubepods_burstable() {
    cri_pod_container_runs_under(Qos::Burstable, "st-e2e-cri-burstable", "burstable");
}

#[test]
fn cri_container_with_a_localhost_profile_refuses_what_it_does_not_allow() {
    e2e::preflight();
    // Allow by default and refuse getcpu: runc (Go) makes many calls between installing the
    // filter and execve (closing fds reads /proc/self/fd...), which a tight allow-list must carry.
    let json = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["getcpu"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    })
    .to_string();
    let dir = "/var/lib/kubelet/seccomp";
    let profile = write_profile(dir, "st-e2e-smoke.json", &json);
    let pod = CriPod::run("st-e2e-cri-seccomp", Qos::BestEffort);
    for (i, how) in [
        CriSeccomp::Localhost(profile.clone()),
        CriSeccomp::LocalhostPath(profile.clone()),
    ]
    .into_iter()
    .map(Some)
    .chain([None])
    .enumerate()
    {
        let label = format!("{how:?}");
        let name = format!("c{i}");
        // The workload: getcpu once, its errno in the container's log, then it stays up.
        let getcpu = nr("getcpu").to_string();
        let script = format!("/rawcall {getcpu}; exec sleep 600");
        let id = pod
            .start(&name, &["sh", "-c", &script], 0, how)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        sleep(Duration::from_secs(1));
        let log = pod.log_of(&name, 0);
        println!("{label}: {log}");
        // Unconfined (the CRI default) without a profile: the call goes through.
        let want = if label == "None" {
            "errno=0"
        } else {
            "errno=1"
        };
        assert!(log.contains(want), "{label}: getcpu gave not {want}: {log}");
        // An ExecSync'd process runs under the container's profile too.
        let out = pod.exec_sync(&id, &["/rawcall", &getcpu]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(want),
            "{label}: ExecSync'd getcpu gave not {want}: {text}"
        );
    }
    let _ = std::fs::remove_file(&profile);
}
