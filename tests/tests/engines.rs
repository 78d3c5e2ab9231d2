//! Recording through the engines beside Docker, then enforcing what was learned there: rootful
//! Podman (crun) and a Kubernetes node's containerd through the CRI. Each records a running
//! container by name, follows its restart and an exec session, and the learned profile then
//! runs the same work under that engine and refuses a call it never made.

use std::{path::Path, thread::sleep, time::Duration};

use e2e::{
    allowed_names, nr, podman, podman_errno_under, preflight, unseen, workdir, CriPod, CriSeccomp,
    Daemon, PodmanContainer, Qos, Recording, POD_NAMESPACE,
};

/// A loop that makes a few distinctive calls (from a thread, a child and itself) and writes
/// their results where the test reads them.
fn script() -> String {
    format!(
        "while true; do /probe thread {} child {} direct {} > /tmp/probe.new; \
         mv /tmp/probe.new /tmp/probe.out; sleep 0.2; done",
        nr("getcpu"),
        nr("sysinfo"),
        nr("getpriority")
    )
}

/// Waits until `read()` holds `needle`; what it held last.
fn eventually(what: &str, needle: &str, mut read: impl FnMut() -> String) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = read();
        if last.contains(needle) {
            return last;
        }
        sleep(Duration::from_millis(200));
    }
    panic!("{what}: no `{needle}` in:\n{last}");
}

#[test]
fn podman_container_by_name_restart_and_exec_then_its_profile_runs_under_podman() {
    preflight();
    let name = "st-e2e-pm-rec";
    let c = PodmanContainer::busybox(name, &script(), None);
    let dir = workdir("podman-rec");
    let profile = dir.join("pm.json");
    // No --engine: the name is only Podman's.
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    rec.wait_for(" getcpu", Duration::from_secs(30));
    // Only in a `podman exec` session.
    c.exec(&["/probe", "direct", &nr("times").to_string()]);
    podman(&["restart", "-t", "1", name]);
    rec.wait_for("new instance", Duration::from_secs(60));
    sleep(Duration::from_secs(2));
    let out = rec.stop();

    let allowed = allowed_names(&profile);
    for call in ["getcpu", "sysinfo", "getpriority", "times", "execve"] {
        assert!(allowed.contains(call), "{call} missing:\n{out}");
    }
    assert!(out.contains("startup: observed on restart"), "{out}");
    // crun's own calls after it installs the filter: without them it cannot start.
    for call in ["pselect6", "rt_sigaction", "setresuid", "capset"] {
        assert!(allowed.contains(call), "{call} (crun) missing:\n{out}");
    }

    let learned = PodmanContainer::busybox("st-e2e-pm-learned", &script(), Some(&profile));
    let probe = eventually("the learned profile under podman", "errno", || {
        learned.exec(&["cat", "/tmp/probe.out"])
    });
    assert!(
        probe.contains(&format!("nr={} errno=0", nr("getcpu"))),
        "{probe}"
    );
    let never = unseen(&allowed);
    assert!(
        podman_errno_under(&profile, never).contains("errno=1"),
        "{never} was not refused"
    );
}

#[test]
fn podman_container_recorded_from_its_creation_with_wait() {
    preflight();
    let name = "st-e2e-pm-wait";
    let _gone = PodmanContainer::claim(name);
    let dir = workdir("podman-wait");
    let profile = dir.join("wait.json");
    let mut rec = Recording::start(
        &[
            "--engine",
            "podman",
            "--wait",
            name,
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    let _c = PodmanContainer::busybox(name, &script(), None);
    rec.wait_for(" getcpu", Duration::from_secs(30));
    let out = rec.stop();
    assert!(!out.contains("LATE"), "{out}");
    let allowed = allowed_names(&profile);
    // The first call after the filter: only seen from the creation on.
    assert!(allowed.contains("execve"), "{out}");
    assert!(allowed.contains("getcpu"), "{out}");
}

#[test]
fn an_engine_the_container_is_not_in_is_a_clear_error() {
    preflight();
    let c = PodmanContainer::busybox("st-e2e-pm-where", "sleep 600", None);
    let out = e2e::tracer(&["record", "--engine", "docker", &c.name], &[]);
    e2e::assert_one_line_error(&out, "not found");
}

#[test]
fn cri_pod_container_by_name_kubelet_restart_and_exec_sync_then_its_kubelet_file_runs_as_localhost()
{
    preflight();
    let pod = CriPod::run("st-e2e-cri-rec", Qos::BestEffort);
    let cmd = ["sh".to_string(), "-c".to_string(), script()];
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let id = pod.start("app", &cmd, 0, None).expect("container starts");
    let dir = workdir("cri-rec");
    let profile = dir.join("web.json");
    let target = format!("{POD_NAMESPACE}/{}/app", pod.name);
    let mut rec = Recording::start(
        &[
            "--engine",
            "cri",
            &target,
            "--format",
            "kubernetes",
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    // The pod runs unconfined, as Kubernetes pods do by default: no live line per call (those
    // are for calls under a filter), the profile is what its tasks called.
    sleep(Duration::from_secs(4));
    // Only in an ExecSync session.
    let exec = pod.exec_sync(&id, &["/probe", "direct", &nr("times").to_string()]);
    assert_eq!(exec.exit_code, 0, "{exec:?}");
    // The kubelet restarts it: a new container of the same name in the same pod.
    let id2 = pod.restart(&id, "app", &cmd, 1);
    rec.wait_for(
        &format!("created as {}", &id2[..12]),
        Duration::from_secs(60),
    );
    sleep(Duration::from_secs(4));
    let out = rec.stop();

    let kubelet = dir.join("web.kubelet.json");
    let allowed = allowed_names(&kubelet);
    for call in ["getcpu", "sysinfo", "getpriority", "times"] {
        assert!(allowed.contains(call), "{call} missing:\n{out}");
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kubelet).expect("kubelet file")).expect("JSON");
    assert!(doc.get("architectures").is_some() && doc.get("archMap").is_none());

    // A pod whose container uses the kubelet file as its Localhost profile: it starts, works,
    // and a call it never made is refused.
    let learned = CriPod::run("st-e2e-cri-learned", Qos::BestEffort);
    let lid = learned
        .start(
            "app",
            &cmd,
            0,
            Some(CriSeccomp::Localhost(Path::new(&kubelet).to_path_buf())),
        )
        .expect("the container starts under its learned profile");
    let probe = eventually("the learned profile under the CRI", "errno", || {
        String::from_utf8_lossy(&learned.exec_sync(&lid, &["cat", "/tmp/probe.out"]).stdout)
            .into_owned()
    });
    assert!(
        probe.contains(&format!("nr={} errno=0", nr("getcpu"))),
        "{probe}"
    );
    let never = unseen(&allowed);
    let refused = learned.exec_sync(&lid, &["/rawcall", &nr(never).to_string()]);
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("errno=1"),
        "{never} was not refused: {refused:?}"
    );
}

#[test]
fn cri_restart_is_refused_with_why() {
    preflight();
    let out = e2e::tracer(
        &[
            "record",
            "--engine",
            "cri",
            "--restart",
            "st-e2e/nobody/app",
        ],
        &[],
    );
    e2e::assert_one_line_error(&out, "--restart is not supported with the CRI");
}

#[test]
fn cri_container_recorded_from_its_creation_with_wait() {
    preflight();
    let pod = CriPod::run("st-e2e-cri-wait", Qos::Burstable);
    let dir = workdir("cri-wait");
    let profile = dir.join("wait.json");
    let target = format!("{POD_NAMESPACE}/{}/app", pod.name);
    // The pod exists, its container not yet (the kubelet pulls its image, say).
    let mut rec = Recording::start(
        &[
            "--engine",
            "cri",
            "--wait",
            &target,
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    let cmd = ["sh".to_string(), "-c".to_string(), script()];
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let id = pod.start("app", &cmd, 0, None).expect("container starts");
    rec.wait_for(
        &format!("created as {}", &id[..12]),
        Duration::from_secs(30),
    );
    sleep(Duration::from_secs(3));
    let out = rec.stop();
    assert!(!out.contains("LATE"), "{out}");
    assert!(out.contains("traced from its first syscall"), "{out}");
    let allowed = allowed_names(&profile);
    for call in ["execve", "getcpu", "getpriority"] {
        assert!(allowed.contains(call), "{call} missing:\n{out}");
    }
}

#[test]
fn daemon_add_by_label_takes_in_pods_through_the_cri() {
    preflight();
    let dir = workdir("cri-daemon-label");
    let mut d = Daemon::start(&dir);
    d.term();
    d.restart_with(&["--engine", "cri"]);
    // As `kubectl -l app=...` selects pods: the pod's labels.
    let out = d.ok(&["add", "--engine", "cri", "--label", "app=st-e2e-cri-sel"]);
    assert!(out.contains("0 existing containers"), "{out}");
    let refused = d.client(&["add", "--engine", "podman", "whatever"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("this daemon records"),
        "{refused:?}"
    );
    let pod = CriPod::run("st-e2e-cri-sel", Qos::BestEffort);
    let cmd = ["sh".to_string(), "-c".to_string(), script()];
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    pod.start("app", &cmd, 0, None).expect("container starts");
    // Named after the pod's owner (its `app` label) and the container.
    let name = "st-e2e-cri-sel-app";
    d.wait_status("not taken in", Duration::from_secs(30), |s| {
        s["targets"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t["name"] == name))
    });
    sleep(Duration::from_secs(3));
    let p = dir.join(format!("{name}.json"));
    d.ok(&["export", name, "-o", p.to_str().unwrap()]);
    let allowed = allowed_names(&p);
    assert!(allowed.contains("getcpu"), "{}", d.text());
}
