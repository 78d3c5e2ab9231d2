//! The container runtime's own syscalls made after it installs the seccomp filter (runc's
//! setgroups, capset, execve...). A container attached late never shows them, yet a profile
//! without them cannot start the container. They are learned on this host by tracing a
//! throwaway container from its creation, and cached per daemon/runtime/kernel.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracer_common::event_kind;

use crate::{
    bpf::{BpfError, EventReader, Tracer},
    profile::SyscallSet,
    syscalls::Arch,
    target::{
        cgroup::container_path,
        docker::{DaemonInfo, DockerClient},
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

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    syscalls: Vec<String>,
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

fn load_cache(key: &str, arch: Arch) -> Option<SyscallSet> {
    let text = std::fs::read_to_string(CACHE_FILE).ok()?;
    let entry: CacheEntry = serde_json::from_str(&text).ok()?;
    if entry.key != key {
        return None;
    }
    entry.syscalls.iter().map(|n| arch.number(n)).collect()
}

fn store_cache(key: &str, arch: Arch, set: &SyscallSet) {
    let (names, _) = set.names(arch);
    let entry = CacheEntry {
        key: key.to_string(),
        syscalls: names.into_iter().map(String::from).collect(),
    };
    let path = Path::new(CACHE_FILE);
    if let (Some(dir), Ok(json)) = (path.parent(), serde_json::to_vec_pretty(&entry)) {
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
}

/// The runtime's post-filter calls: from the cache, or learned now with a throwaway container.
/// `sibling` is a (container id, cgroup path) pair of this daemon, to derive the cgroup path.
pub async fn runtime_baseline(
    docker: &DockerClient,
    info: &DaemonInfo,
    tracer: &mut Tracer,
    events: &mut EventReader,
    sibling: Option<(&str, &str)>,
    arch: Arch,
) -> Result<(SyscallSet, Source), BaselineError> {
    let key = format!("{} arch {arch:?}", info.runtime_key);
    if let Some(set) = load_cache(&key, arch) {
        return Ok((set, Source::Cache));
    }
    let program = exit_program(arch).ok_or(BaselineError::Arch)?;
    docker.ensure_image(IMAGE, "exit", &program).await?;
    // Left behind if a previous run was killed while it waited for one.
    docker.remove_exited(LABEL).await?;
    let name = format!("seccomp-tracer-probe-{}", std::process::id());
    let id = docker.create(&name, IMAGE, &["/exit"], LABEL).await?;
    let result = observe(docker, info, tracer, events, sibling, &id).await;
    docker.remove(&id).await?;
    let set = result?;
    store_cache(&key, arch, &set);
    Ok((set, Source::Learned))
}

async fn observe(
    docker: &DockerClient,
    info: &DaemonInfo,
    tracer: &mut Tracer,
    events: &mut EventReader,
    sibling: Option<(&str, &str)>,
    id: &str,
) -> Result<SyscallSet, BaselineError> {
    let mut paths = vec![container_path(id, sibling, &info.cgroup_driver)];
    let fallback = container_path(id, None, &info.cgroup_driver);
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
    let record = tracer.record(cgroup)?;
    tracer.remove_cgroup(cgroup)?;
    Ok(record
        .map(|r| SyscallSet::from_bits(&r.allowed))
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
}
