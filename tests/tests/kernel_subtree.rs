//! A target's whole cgroup subtree: calls made in a descendant cgroup of a target (systemd in
//! a container, Docker-in-Docker, any delegation) belong to the target's profile, whether the
//! descendant existed before the tracer attached or was created after. Needs root, BPF and
//! Docker; fails (never skips) without them.

use std::{
    path::{Path, PathBuf},
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{
    allowed_names, busybox, cleanup, docker, nr, preflight, probe_in_cgroup, workdir, Recording,
};

/// Cgroup directories this test created, removed (deepest first) when dropped; leftovers of
/// an earlier run are removed when they are created again.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    fn new() -> Self {
        Self(Vec::new())
    }

    /// Creates `path` (its parent must exist or have been created before) and owns it.
    fn create(&mut self, path: PathBuf) -> PathBuf {
        remove_tree(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        self.0.push(path.clone());
        path
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Removes the cgroup directory `path` and its descendants, if it exists (cgroupfs takes
/// only rmdir, of empty cgroups, children first).
fn remove_tree(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(path);
}

fn cgroup2_root() -> PathBuf {
    seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2")
}

/// A process moved into a child cgroup created after the tracer attached: its calls are the
/// parent target's.
#[test]
fn a_call_in_a_child_cgroup_created_after_attach_is_in_the_parent_profile() {
    preflight();
    let mut cgroups = Cgroups::new();
    let parent = cgroups.create(cgroup2_root().join("st-kp-parent"));
    let dir = workdir("kp-subtree-later");
    let profile = dir.join("parent.json");
    let rec = Recording::start(
        &[
            "--cgroup",
            parent.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    let child = cgroups.create(parent.join("child"));
    probe_in_cgroup(&child, &format!("direct {}", nr("getcpu")));
    // Host processes have no seccomp filter: their calls count as the target's own.
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let allowed = allowed_names(&profile);
    assert!(
        allowed.contains("getcpu"),
        "getcpu, made in {}, missing from the profile of its parent: {allowed:?}\n{text}",
        child.display()
    );
}

/// Descendants that exist when the tracer attaches, two levels down, are covered too; a
/// sibling of the target, outside its subtree, is not.
#[test]
fn calls_in_descendants_that_exist_before_attach_are_in_the_profile_and_a_sibling_is_not() {
    preflight();
    let mut cgroups = Cgroups::new();
    let root = cgroup2_root();
    let parent = cgroups.create(root.join("st-kp-tree"));
    let child = cgroups.create(parent.join("child"));
    let grandchild = cgroups.create(child.join("grandchild"));
    let sibling = cgroups.create(root.join("st-kp-tree-sibling"));
    let dir = workdir("kp-subtree-before");
    let profile = dir.join("tree.json");
    let rec = Recording::start(
        &[
            "--cgroup",
            parent.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    probe_in_cgroup(&child, &format!("thread {}", nr("sysinfo")));
    probe_in_cgroup(&grandchild, &format!("child {}", nr("getcpu")));
    probe_in_cgroup(&sibling, &format!("direct {}", nr("getpriority")));
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let allowed = allowed_names(&profile);
    for call in ["sysinfo", "getcpu"] {
        assert!(
            allowed.contains(call),
            "{call}, made in a descendant, missing from the profile: {allowed:?}\n{text}"
        );
    }
    assert!(
        !allowed.contains("getpriority"),
        "getpriority, made in {} outside the target's subtree, is in its profile\n{text}",
        sibling.display()
    );
}

/// A container's process moved into `<container cgroup>/sub` (what systemd or a nested
/// runtime inside it would do) still writes the container's profile, under its filter. The
/// kernel adopts new cgroups under Docker's parent as containers; `sub` is not one, and must
/// not become a target of its own (dropped unnamed 10 s later, with its calls).
#[test]
fn a_container_process_moved_into_a_sub_cgroup_is_still_recorded() {
    preflight();
    let name = "st-kp-sub";
    // Declared first, dropped last: the container is removed before its sub-cgroup.
    let mut cgroups = Cgroups::new();
    let _c = cleanup(&[name]);
    let dir = workdir("kp-subtree-container");
    let profile = dir.join("sub.json");
    // Waits for /tmp/go (from the host), then makes the call in whatever cgroup it is in.
    let script = format!(
        "while [ ! -e /tmp/go ]; do sleep 0.1; done; /probe direct {}; sleep 1000",
        nr("getcpu")
    );
    busybox(name, &script, None);
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", name]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup2 path");
    let container_cg = cgroup2_root().join(path.trim_start_matches('/'));
    let rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    let sub = cgroups.create(container_cg.join("sub"));
    std::fs::write(sub.join("cgroup.procs"), &pid).expect("move the container's shell");
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").expect("start the call");
    let t0 = Instant::now();
    while !docker(&["logs", name]).contains("nr=") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the container made no call"
        );
        sleep(Duration::from_millis(100));
    }
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let allowed = allowed_names(&profile);
    assert!(
        allowed.contains("getcpu"),
        "getcpu, made in {}, missing from the container's profile: {allowed:?}\n{text}",
        sub.display()
    );
}
