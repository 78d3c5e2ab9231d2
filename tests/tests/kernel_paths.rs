//! Kernel paths: a cgroup target outside Docker, a task installing its own filter, a storm
//! across 1,000 cgroups. Needs root, BPF and Docker; fails (never skips) without them.

use std::{
    path::PathBuf,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use e2e::{allowed_names, nr, preflight, probe_in_cgroup, sh, workdir, Recording};

#[test]
fn cgroup_target_records_a_process_outside_docker() {
    preflight();
    let dir = workdir("cgroup");
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let cg = root.join("seccomp-tracer-e2e");
    let _ = std::fs::create_dir(&cg);
    let profile = dir.join("cg.json");
    let rec = Recording::start(
        &[
            "--cgroup",
            cg.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
        ],
        &dir,
    );
    probe_in_cgroup(&cg, &format!("thread {}", nr("getcpu")));
    // Host processes have no seccomp filter: their calls count as the target's own.
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let _ = std::fs::remove_dir(&cg);
    let allowed = allowed_names(&profile);
    assert!(allowed.contains("getcpu"), "{text}");
    assert!(text.contains("without a seccomp filter"), "{text}");
}

/// A task that installs its seccomp filter itself: its calls before are set-up, left out; its
/// calls after are the profile, and so is a sibling thread's call right after a TSYNC install,
/// made before the installing thread makes another call. With and without refusal detection:
/// the kernel ends an install at its sys_exit, or else at the task's next call.
#[test]
fn calls_after_a_task_installs_its_filter_are_told_from_set_up() {
    preflight();
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let cg = root.join("seccomp-tracer-e2e-install");
    let _ = std::fs::create_dir(&cg);
    for refusals in [true, false] {
        let dir = workdir(if refusals {
            "install"
        } else {
            "install-no-refusals"
        });
        let profile = dir.join("installs.json");
        let mut args = vec![
            "--cgroup",
            cg.to_str().unwrap(),
            "-o",
            profile.to_str().unwrap(),
            "--no-runtime-baseline",
        ];
        if !refusals {
            args.push("--no-refusals");
        }
        let rec = Recording::start(&args, &dir);
        for probe_args in [
            format!(
                "direct {} tsync_filter {} direct {}",
                nr("getcpu"),
                nr("times"),
                nr("sysinfo")
            ),
            format!(
                "direct {} prctl_filter 0 direct {}",
                nr("getcpu"),
                nr("getrusage")
            ),
        ] {
            probe_in_cgroup(&cg, &probe_args);
        }
        sleep(Duration::from_millis(500));
        let text = rec.stop();
        let allowed = allowed_names(&profile);
        for call in ["times", "sysinfo", "getrusage"] {
            assert!(
                allowed.contains(call),
                "refusals {refusals}: {call}, made after the install, missing: {allowed:?}\n{text}"
            );
        }
        assert!(
            !allowed.contains("getcpu"),
            "refusals {refusals}: getcpu, made before the install, is in: {allowed:?}\n{text}"
        );
    }
    let _ = std::fs::remove_dir(&cg);
}

/// Calls that are harmless with all-zero arguments (most fail with EFAULT or EINVAL, after
/// passing sys_enter like any call).
const STORM_CALLS: [&str; 24] = [
    "getcpu",
    "getpriority",
    "getitimer",
    "getrusage",
    "sysinfo",
    "times",
    "getsid",
    "getpgid",
    "capget",
    "sched_getscheduler",
    "sched_get_priority_max",
    "getresuid",
    "getresgid",
    "clock_getres",
    "getrlimit",
    "sigaltstack",
    "rt_sigpending",
    "ioprio_get",
    "get_mempolicy",
    "membarrier",
    "getgroups",
    "sched_getaffinity",
    "uname",
    "gettimeofday",
];

/// 1,000 traced cgroups, each with a process making its own mix of calls, all at once: many
/// thousands of first sightings in a burst, more than the ring buffer holds. The bitmaps are
/// the authority, so however many events drop, no cgroup's profile may lose a call.
#[test]
fn a_storm_across_1000_cgroups_loses_no_syscall() {
    preflight();
    const N: usize = 1000;
    let dir = workdir("storm");
    let root = seccomp_tracer::target::cgroup::cgroup2_root().expect("cgroup2");
    let parent = root.join("seccomp-tracer-e2e-storm");
    let _ = std::fs::create_dir(&parent);
    let cgroups: Vec<PathBuf> = (0..N)
        .map(|i| {
            let cg = parent.join(format!("c{i:04}"));
            let _ = std::fs::create_dir(&cg);
            cg
        })
        .collect();
    let out = dir.join("profiles");
    std::fs::create_dir_all(&out).expect("profiles dir");
    let mut args: Vec<String> = Vec::new();
    for cg in &cgroups {
        args.extend(["--cgroup".to_string(), cg.display().to_string()]);
    }
    args.extend(["-o".to_string(), out.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let rec = Recording::start(&argv, &dir);

    // Cgroup i makes calls i % 24, (i + 7) % 24 and (i + 13) % 24, each from its own process.
    let rawcall = "/var/tmp/seccomp-tracer-images/bin/rawcall";
    let mix = |i: usize| [i % 24, (i + 7) % 24, (i + 13) % 24].map(|k| STORM_CALLS[k]);
    // Each subshell moves itself ("0" is the writer) into its cgroup, then runs its calls.
    let mut script = format!("R={rawcall}\n");
    for (i, cg) in cgroups.iter().enumerate() {
        let calls: Vec<String> = mix(i).iter().map(|c| format!("$R {}", nr(c))).collect();
        script += &format!(
            "(echo 0 > {}/cgroup.procs && {}) >/dev/null 2>&1 &\n",
            cg.display(),
            calls.join("; ")
        );
    }
    script += "wait\n";
    let script_file = dir.join("storm.sh");
    std::fs::write(&script_file, script).expect("script");
    let t0 = Instant::now();
    let status = sh(Command::new("sh").arg(&script_file)).status;
    assert!(status.success());
    let burst = t0.elapsed();
    sleep(Duration::from_millis(500));
    let text = rec.stop();
    let mut lost = Vec::new();
    for (i, cg) in cgroups.iter().enumerate() {
        let name = cg.file_name().unwrap().to_str().unwrap();
        let allowed = allowed_names(&out.join(format!("{name}.json")));
        for call in mix(i) {
            if !allowed.contains(call) {
                lost.push(format!("{name}:{call}"));
            }
        }
    }
    for cg in &cgroups {
        let _ = std::fs::remove_dir(cg);
    }
    let _ = std::fs::remove_dir(&parent);
    let summary = text.lines().rev().find(|l| l.contains("ring-buffer drops"));
    eprintln!(
        "storm: {N} cgroups in {burst:?}; {}",
        summary.unwrap_or("?")
    );
    assert!(
        lost.is_empty(),
        "lost {} calls: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
}

/// A ring buffer of one page, overrun while the tracer is frozen across eight restarts: the
/// adoption events of the last instances are dropped, yet the last instance is found in the
/// kernel's map and what it did is in the profile.
#[test]
fn an_instance_whose_adoption_event_was_dropped_is_still_recorded() {
    preflight();
    let name = "st-e2e-ring";
    let _c = e2e::cleanup(&[name]);
    let dir = workdir("ring");
    e2e::busybox(name, "while true; do sleep 0.2; done", None);
    let profile = dir.join("ring.json");
    let mut rec = Recording::start_env(
        &[name, "-o", profile.to_str().unwrap()],
        &dir,
        &[("SECCOMP_TRACER_TEST_RING_BYTES", "4096")],
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(rec.child.id() as i32, libc::SIGSTOP) };
    for _ in 0..8 {
        e2e::docker(&["restart", "-t", "0", name]);
    }
    // Only the last instance makes this call.
    e2e::docker(&["exec", name, "/probe", "direct", &nr("getcpu").to_string()]);
    // SAFETY: as above.
    unsafe { libc::kill(rec.child.id() as i32, libc::SIGCONT) };
    rec.wait_for("event was dropped", Duration::from_secs(30));
    let text = rec.stop();
    let drops: u64 = text
        .split(" ring-buffer drops")
        .next()
        .and_then(|t| t.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        drops > 0,
        "no event was dropped, the test proves nothing:\n{text}"
    );
    assert!(allowed_names(&profile).contains("getcpu"), "{text}");
}
