//! The container runtime's own syscalls made after it installs the seccomp filter (runc's
//! setgroups, capset, execve...). A container attached late never shows them, yet a profile
//! without them cannot start the container. They are learned on this host by tracing a
//! throwaway container from its creation, and cached per daemon/runtime/kernel.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracer_common::{arg_call, arg_phase, event_kind};

use crate::{
    bpf::{BpfError, EventReader},
    kernel::Kernel,
    profile::{args::arg_call_of, Learned},
    syscalls::Arch,
    target::{
        docker::DaemonInfo,
        engine::{EngineClient, Layout},
        TargetError,
    },
};

/// The image of the throwaway container: one static binary that only calls exit_group(0).
pub const IMAGE: &str = "seccomp-tracer/runtime-probe:1";
/// Watch tag of the throwaway container's cgroup.
pub const TAG: u32 = tracer_common::watch_tag::BASELINE;
/// Label of throwaway containers.
const LABEL: (&str, &str) = ("org.seccomp-tracer.probe", "1");
pub const CACHE_FILE: &str = "/var/cache/seccomp-tracer/runtime-baseline.json";

#[derive(Debug, Error)]
pub enum BaselineError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(
        "the throwaway container's cgroup was never seen (tried {0}); use --no-runtime-baseline"
    )]
    NotObserved(String),
    #[error("the throwaway container did not exit within {0:?}")]
    Timeout(Duration),
    #[error("no baseline program for this architecture")]
    Arch,
}

/// What the Go runtime inside `runc init` may call at any moment between installing the filter
/// and execve: its scheduler (futex, nanosleep, sched_yield), asynchronous preemption (getpid,
/// gettid, tgkill, then rt_sigreturn from the handler), signal masks and stacks, memory (mmap,
/// munmap, madvise, mprotect), new threads (clone without namespace flags, exit) and its
/// network poller (epoll_pwait). One throwaway container shows only some of them; a profile
/// without the rest starts the container most of the time only (measured: 3 failures in 15 for
/// a static program, rt_sigreturn refused after a preemption signal ends in SIGSEGV).
pub const GO_RUNTIME_CALLS: &[&str] = &[
    "clone",
    "epoll_pwait",
    "exit",
    "futex",
    "getpid",
    "gettid",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "sigaltstack",
    "tgkill",
];

/// What runc calls between installing the filter and execve, besides its Go runtime's calls
/// ([`GO_RUNTIME_CALLS`]): measured with runc 1.1 (a throwaway Docker container on this
/// project's test host). Used where no throwaway container can be run, the CRI: the kubelet
/// owns every container there.
pub const RUNC_CALLS: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
    "epoll_ctl",
    "execve",
    "exit_group",
    "faccessat2",
    "fcntl",
    "fstat",
    "fstatfs",
    "getcwd",
    "getdents64",
    "getppid",
    "newfstatat",
    "openat",
    "prctl",
    "read",
    "setgid",
    "setgroups",
    "setuid",
    "write",
];

/// What crun (a C program, Podman's default runtime) may call between installing the filter
/// and execve: it waits for its parent's go-ahead (pselect6, read), sets the user, groups and
/// capabilities (setresuid, setresgid, capset, prctl) and resets signal dispositions and the
/// mask (rt_sigaction, rt_sigprocmask). One throwaway container does not show them all; a
/// profile without pselect6 and rt_sigaction fails with `crun: read from the init process`.
pub const CRUN_CALLS: &[&str] = &[
    "capset",
    "close",
    "execve",
    "pselect6",
    "prctl",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "setresgid",
    "setresuid",
    "write",
];

/// The calls a runtime may make after installing the filter that one throwaway container
/// does not always show: crun's, or the Go runtime's for runc and any runtime not known (which
/// only costs a few allowed calls).
fn runtime_calls(default_runtime: &str) -> &'static [&'static str] {
    if default_runtime.contains("crun") {
        CRUN_CALLS
    } else if default_runtime.contains("youki") {
        &[]
    } else {
        GO_RUNTIME_CALLS
    }
}

/// Adds the calls of [`runtime_calls`] to `l` (clone only without namespace flags, as Go
/// creates threads).
pub fn add_runtime_calls(l: &mut Learned, arch: Arch, default_runtime: &str) {
    let calls = runtime_calls(default_runtime);
    for name in calls {
        if let Some(nr) = arch.number(name) {
            l.native.allowed.insert(nr);
        }
    }
    if calls.contains(&"clone") {
        l.args.add(arg_call::CLONE, arg_phase::ALLOWED, 0);
    }
}

/// Bumped when the cache's meaning changes, so an old cache is learned again.
const CACHE_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    syscalls: Vec<String>,
    /// First-argument values of the argument-filtered calls among `syscalls`; a call missing
    /// here is allowed with any argument.
    #[serde(default)]
    args: BTreeMap<String, Vec<u64>>,
}

/// A minimal static ELF executable that calls exit_group(0), for `arch`.
pub fn exit_program(arch: Arch) -> Option<Vec<u8>> {
    const BASE: u64 = 0x40_0000;
    const CODE_AT: u64 = 64 + 56;
    let (machine, code): (u16, &[u8]) = match arch {
        // xor edi, edi; mov eax, 231; syscall
        Arch::X86_64 => (0x3e, &[0x31, 0xff, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05]),
        // mov x0, #0; mov x8, #94; svc #0
        Arch::Aarch64 => (
            0xb7,
            &[
                0x00, 0x00, 0x80, 0xd2, 0xc8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
            ],
        ),
        Arch::I386 => return None,
    };
    let total = CODE_AT + code.len() as u64;
    let mut e = Vec::with_capacity(total as usize);
    e.extend([0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(machine.to_le_bytes());
    e.extend(1u32.to_le_bytes());
    e.extend((BASE + CODE_AT).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // program headers right after this header
    e.extend(0u64.to_le_bytes()); // no section headers
    e.extend(0u32.to_le_bytes());
    e.extend(64u16.to_le_bytes());
    e.extend(56u16.to_le_bytes());
    e.extend(1u16.to_le_bytes());
    e.extend([0u8; 6]);
    // PT_LOAD, R+X, the whole file at BASE
    e.extend(1u32.to_le_bytes());
    e.extend(5u32.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(BASE.to_le_bytes());
    e.extend(BASE.to_le_bytes());
    e.extend(total.to_le_bytes());
    e.extend(total.to_le_bytes());
    e.extend(0x1000u64.to_le_bytes());
    e.extend(code);
    Some(e)
}

/// The cache: one entry per engine, runtime and kernel seen on this host (Docker and Podman
/// on one host do not evict each other's), newest last.
#[derive(Default, Serialize, Deserialize)]
struct Cache {
    entries: Vec<CacheEntry>,
}

/// Entries kept: more engines and runtimes than a host has.
const CACHE_ENTRIES: usize = 16;

fn read_cache() -> Cache {
    std::fs::read_to_string(CACHE_FILE)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn load_cache(key: &str, arch: Arch) -> Option<Learned> {
    let cache = read_cache();
    let entry = cache.entries.into_iter().find(|e| e.key == key)?;
    let mut l = Learned::default();
    for name in &entry.syscalls {
        l.native.allowed.insert(arch.number(name)?);
        if let Some(call) = arg_call_of(name) {
            match entry.args.get(name) {
                Some(values) => values
                    .iter()
                    .for_each(|&v| l.args.add(call, arg_phase::ALLOWED, v)),
                None => l.args.set_any(call, arg_phase::ALLOWED),
            }
        }
    }
    Some(l)
}

fn store_cache(key: &str, arch: Arch, learned: &Learned) {
    let (names, _) = learned.native.allowed.names(arch);
    let entry = CacheEntry {
        key: key.to_string(),
        syscalls: names.into_iter().map(String::from).collect(),
        args: learned.args.allowed_values(),
    };
    let mut cache = read_cache();
    cache.entries.retain(|e| e.key != entry.key);
    cache.entries.push(entry);
    let excess = cache.entries.len().saturating_sub(CACHE_ENTRIES);
    cache.entries.drain(..excess);
    let path = Path::new(CACHE_FILE);
    if let (Some(dir), Ok(json)) = (path.parent(), serde_json::to_vec_pretty(&cache)) {
        // A cache that cannot be written only costs a second throwaway container next time.
        let _ = std::fs::create_dir_all(dir);
        let _ = crate::output::write_atomic(path, &json);
    }
}

/// Where the baseline came from, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Cache,
    Learned,
    /// The runtime's calls as measured elsewhere ([`RUNC_CALLS`]): the engine runs no
    /// throwaway container.
    Known,
}

/// The runtime's post-filter calls: from the cache, or learned now with a throwaway container.
/// `sibling` is a (container id, cgroup path) pair of this daemon, to derive the cgroup path.
pub async fn runtime_baseline(
    docker: &EngineClient,
    info: &DaemonInfo,
    layout: Layout,
    tracer: &mut dyn Kernel,
    events: &mut EventReader,
    sibling: Option<(&str, &str)>,
    arch: Arch,
) -> Result<(Learned, Source), BaselineError> {
    if docker.kind() == crate::target::engine::EngineKind::Cri {
        let mut learned = Learned::default();
        let known = if info.default_runtime.contains("crun") {
            CRUN_CALLS
        } else {
            RUNC_CALLS
        };
        for name in known {
            if let Some(nr) = arch.number(name) {
                learned.native.allowed.insert(nr);
            }
        }
        add_runtime_calls(&mut learned, arch, &info.default_runtime);
        return Ok((learned, Source::Known));
    }
    let key = format!("v{CACHE_VERSION} {} arch {arch:?}", info.runtime_key);
    if let Some(mut learned) = load_cache(&key, arch) {
        add_runtime_calls(&mut learned, arch, &info.default_runtime);
        return Ok((learned, Source::Cache));
    }
    let program = exit_program(arch).ok_or(BaselineError::Arch)?;
    docker.ensure_image(IMAGE, "exit", &program).await?;
    // Left behind if a previous run was killed while it waited for one.
    docker.remove_exited(LABEL).await?;
    let name = format!("seccomp-tracer-probe-{}", std::process::id());
    let id = docker.create(&name, IMAGE, &["/exit"], LABEL).await?;
    let result = observe(docker, layout, tracer, events, sibling, &id).await;
    docker.remove(&id).await?;
    let mut learned = result?;
    store_cache(&key, arch, &learned);
    add_runtime_calls(&mut learned, arch, &info.default_runtime);
    Ok((learned, Source::Learned))
}

async fn observe(
    docker: &EngineClient,
    layout: Layout,
    tracer: &mut dyn Kernel,
    events: &mut EventReader,
    sibling: Option<(&str, &str)>,
    id: &str,
) -> Result<Learned, BaselineError> {
    let mut paths = vec![layout.container_path(id, sibling)];
    let fallback = layout.container_path(id, None);
    if !paths.contains(&fallback) {
        paths.push(fallback);
    }
    for p in &paths {
        tracer.watch(p, TAG)?;
    }
    docker.start(id).await?;
    let limit = Duration::from_secs(60);
    tokio::time::timeout(limit, docker.wait(id))
        .await
        .map_err(|_| BaselineError::Timeout(limit))??;
    let mut cgroup = None;
    while let Some(ev) = events.pop() {
        if ev.kind == event_kind::ADOPTED && ev.value == TAG {
            cgroup = Some(ev.cgroup_id);
        }
    }
    for p in &paths {
        tracer.unwatch(p)?;
    }
    let cgroup = cgroup.ok_or_else(|| BaselineError::NotObserved(paths.join(", ")))?;
    let learned = tracer.learned(cgroup)?;
    tracer.remove_cgroup(cgroup)?;
    // Only what ran under the filter: the runtime's set-up before it is not the profile's.
    Ok(learned
        .map(|l| Learned {
            native: crate::profile::Calls {
                allowed: l.native.allowed,
                ..Default::default()
            },
            args: l.args,
            ..Default::default()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_program_is_a_static_elf() {
        let elf = exit_program(Arch::X86_64).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 0x3e);
        let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
        assert_eq!(entry, 0x40_0000 + 120);
        assert_eq!(elf.len(), 120 + 9);
        assert!(exit_program(Arch::Aarch64).is_some());
    }

    /// Runs the x86_64 program for real: it must exit 0 having done nothing else.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn exit_program_runs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit");
        std::fs::write(&p, exit_program(Arch::X86_64).unwrap()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = std::process::Command::new(&p).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn go_runtime_calls_exist_and_clone_stays_narrow() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for name in GO_RUNTIME_CALLS.iter().chain(CRUN_CALLS) {
                assert!(arch.number(name).is_some(), "{name} on {arch:?}");
            }
        }
        let mut l = Learned::default();
        add_runtime_calls(&mut l, Arch::X86_64, "runc");
        assert_eq!(
            l.args.get(arg_call::CLONE, arg_phase::ALLOWED),
            Some(&crate::profile::args::Seen::Values([0].into()))
        );
        assert_eq!(runtime_calls("runc"), GO_RUNTIME_CALLS);
        assert_eq!(runtime_calls(""), GO_RUNTIME_CALLS);
        assert_eq!(runtime_calls("crun"), CRUN_CALLS);
        let mut crun = Learned::default();
        add_runtime_calls(&mut crun, Arch::X86_64, "crun");
        let (names, _) = crun.native.allowed.names(Arch::X86_64);
        assert!(names.contains("pselect6") && names.contains("rt_sigaction"));
        assert!(!names.contains("futex"), "crun is not a Go program");
        assert_eq!(crun.args.get(arg_call::CLONE, arg_phase::ALLOWED), None);
    }
}
