//! Attaching the kernel programs and pinning their links and maps: where each program goes,
//! which stay attached for a `Tracer`'s lifetime and which (the syscall programs) come and
//! go, the bpffs layout of a pinned set, and the benchmark's programs.

use std::path::{Path, PathBuf};

use aya::{
    programs::{links::FdLink, BtfTracePoint, ProgramError, RawTracePoint, TracePoint},
    Ebpf,
};
use tracer_common::programs;

use super::{BpfError, KernelLayout};

/// Where a program attaches.
#[derive(Clone, Copy)]
enum Hook {
    /// A BTF tracepoint (`tp_btf`), by tracepoint name.
    Btf(&'static str),
    /// A classic tracepoint, by category and name.
    Classic(&'static str, &'static str),
    /// A raw tracepoint (the benchmark's programs, like the floor the issue defines).
    Raw(&'static str),
}

/// The programs `Tracer` attaches for as long as it lives, and where each goes. They run on
/// rare events (task creation, cgroup changes) and keep the per-CPU records of the syscall
/// programs right even while those are detached.
const PROGRAMS: [(&str, Hook); 3] = [
    (programs::TASK_FORK, Hook::Btf("sched_process_fork")),
    (programs::CGROUP_ATTACH, Hook::Btf("cgroup_attach_task")),
    (
        programs::CGROUP_MKDIR,
        Hook::Classic("cgroup", "cgroup_mkdir"),
    ),
];

/// The syscall programs, which every syscall on the host pays for once attached: attached
/// only while there is something to record (see [`Links::set_hooks`]), in this order, and
/// detached in the reverse one (sys_exit without sys_enter would take calls for refusals).
/// `sys_exit` (refusal detection) is optional.
const HOOKS: [(&str, Hook); 2] = [
    (programs::SYS_ENTER, Hook::Btf("sys_enter")),
    (programs::SYS_EXIT, Hook::Btf("sys_exit")),
];
const REFUSAL_PROGRAM: &str = programs::SYS_EXIT;

/// Loads program `program` of `ebpf` (unless loaded already) and attaches it to `hook`. With
/// `pin`, pins the link there so the program stays attached after this process exits; without,
/// a BTF tracepoint's link is returned (dropping it detaches), other links stay in `ebpf`.
fn attach(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
    program: &'static str,
    hook: Hook,
    pin: Option<&Path>,
) -> Result<Option<FdLink>, BpfError> {
    let attach_err = |e: ProgramError| BpfError::Attach {
        program,
        detail: format!("{e:#}"),
    };
    let prog = ebpf
        .program_mut(program)
        .ok_or(BpfError::Load(format!("program {program} missing")))?;
    let loaded = prog.fd().is_ok();
    let link = match hook {
        Hook::Btf(tracepoint) => {
            let prog: &mut BtfTracePoint = prog.try_into().map_err(attach_err)?;
            if !loaded {
                prog.load(tracepoint, btf).map_err(attach_err)?;
            }
            let id = prog.attach().map_err(attach_err)?;
            let link = prog.take_link(id).map(FdLink::from).map_err(attach_err)?;
            if pin.is_none() {
                return Ok(Some(link));
            }
            Some(Ok(link))
        }
        Hook::Classic(category, name) => {
            let prog: &mut TracePoint = prog.try_into().map_err(attach_err)?;
            if !loaded {
                prog.load().map_err(attach_err)?;
            }
            let id = prog.attach(category, name).map_err(attach_err)?;
            pin.map(|_| {
                prog.take_link(id).and_then(|l| {
                    FdLink::try_from(l).map_err(|e| {
                        ProgramError::IOError(std::io::Error::other(format!(
                            "this kernel cannot pin a perf-event link: {e}"
                        )))
                    })
                })
            })
        }
        Hook::Raw(tracepoint) => {
            let prog: &mut RawTracePoint = prog.try_into().map_err(attach_err)?;
            if !loaded {
                prog.load().map_err(attach_err)?;
            }
            let id = prog.attach(tracepoint).map_err(attach_err)?;
            pin.map(|_| prog.take_link(id).map(FdLink::from))
        }
    };
    if let (Some(path), Some(link)) = (pin, link) {
        pin_link(program, link.map_err(attach_err)?, path)?;
    }
    Ok(None)
}

fn kernel_btf() -> Result<aya::Btf, BpfError> {
    aya::Btf::from_sys_fs().map_err(|e| BpfError::Load(format!("reading the kernel's BTF: {e}")))
}

/// Where the link of `program` is pinned in bpffs directory `dir`.
fn link_pin(dir: &Path, program: &str) -> PathBuf {
    dir.join(format!("link_{program}"))
}

/// Where map `map` (one of `tracer_common::maps::ALL`) is pinned in bpffs directory `dir`.
pub(super) fn map_pin(dir: &Path, map: &str) -> PathBuf {
    dir.join(map)
}

fn pin_link(program: &'static str, link: FdLink, path: &Path) -> Result<(), BpfError> {
    link.pin(path).map_err(|e| BpfError::Attach {
        program,
        detail: format!("pinning at {}: {e}", path.display()),
    })?;
    Ok(())
}

/// Where a daemon with state directory `state` pins the maps and links of this build of the
/// kernel programs: `base/<state>/<build>`, so daemons with different state directories never
/// share maps, and a new version never runs against maps laid out for another.
pub fn pin_dir(base: &Path, state: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let hash = |data: &[u8]| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        data.hash(&mut h);
        format!("{:016x}", h.finish())
    };
    let state = state.canonicalize().unwrap_or_else(|_| state.to_path_buf());
    base.join(hash(state.as_os_str().as_encoded_bytes()))
        .join(hash(crate::EBPF_OBJECT))
}

/// Benchmark programs: `floor` (empty, on sys_enter), `floor_exit` (empty, on sys_exit) and
/// the `probe_*` pieces of the filter (on sys_enter).
pub const BENCH_PROGRAMS: [&str; 4] = [
    programs::FLOOR,
    programs::FLOOR_EXIT,
    programs::PROBE_HELPER,
    programs::PROBE_HASH,
];

/// Attaches benchmark programs (see [`BENCH_PROGRAMS`]) alone; detached on drop.
pub fn attach_floor(layout: &KernelLayout, programs: &[String]) -> Result<Ebpf, BpfError> {
    let tgid = std::process::id();
    let mut ebpf = layout
        .loader(&tgid)
        .load(crate::EBPF_OBJECT)
        .map_err(|e| BpfError::Load(format!("{e:#}")))?;
    let btf = kernel_btf()?;
    for name in programs {
        let Some(&prog) = BENCH_PROGRAMS.iter().find(|p| *p == name) else {
            return Err(BpfError::Load(format!("no benchmark program {name}")));
        };
        let tracepoint = if prog == programs::FLOOR_EXIT {
            "sys_exit"
        } else {
            "sys_enter"
        };
        // Raw tracepoint links stay in `ebpf`.
        attach(&mut ebpf, &btf, prog, Hook::Raw(tracepoint), None)?;
    }
    Ok(ebpf)
}

/// The attachments of one loaded set of programs: [`PROGRAMS`] for as long as it lives, the
/// syscall [`HOOKS`] while wanted. Links of unpinned BTF programs are held here (dropping one
/// detaches it); pinned ones live in the pin directory.
pub(super) struct Links {
    btf: aya::Btf,
    /// The bpffs directory of the pinned maps and links, if pinned.
    pin: Option<PathBuf>,
    links: Vec<(&'static str, FdLink)>,
    /// Whether sys_exit (refusal detection) is wanted with sys_enter.
    refusals: bool,
    /// Whether the syscall programs ([`HOOKS`]) are attached.
    hooked: bool,
    /// The programs were already attached by an earlier process (pinned), and kept recording.
    resumed: bool,
}

impl Links {
    /// Attaches [`PROGRAMS`], or, when `pin` holds a whole set pinned by an earlier process,
    /// keeps that one (resumed). The syscall hooks stay as they are until
    /// [`set_hooks`](Self::set_hooks), except that a partial set's are unpinned.
    pub(super) fn attach(
        ebpf: &mut Ebpf,
        pin: Option<&Path>,
        refusals: bool,
    ) -> Result<Self, BpfError> {
        let link_path = |prog: &str| pin.map(|d| link_pin(d, prog));
        let resumed = PROGRAMS
            .iter()
            .all(|(prog, _)| link_path(prog).is_some_and(|p| p.exists()));
        let btf = kernel_btf()?;
        let mut links = Vec::new();
        for (prog, hook) in PROGRAMS {
            let path = link_path(prog);
            // Kept: a link of a resumed set.
            if resumed {
                continue;
            }
            if let Some(p) = &path {
                // A partial set from an interrupted start: unpinning detaches it.
                let _ = std::fs::remove_file(p);
            }
            if let Some(link) = attach(ebpf, &btf, prog, hook, path.as_deref())? {
                links.push((prog, link));
            }
        }
        if !resumed {
            for (prog, _) in HOOKS {
                if let Some(p) = link_path(prog) {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        Ok(Self {
            btf,
            pin: pin.map(Path::to_path_buf),
            links,
            refusals,
            hooked: false,
            resumed,
        })
    }

    /// Attaches the syscall programs ([`HOOKS`]) or detaches them. Links pinned by an earlier
    /// process are taken over; refusal detection turned off since then is detached.
    pub(super) fn set_hooks(&mut self, ebpf: &mut Ebpf, on: bool) -> Result<(), BpfError> {
        let refusals = self.refusals;
        let wanted = |prog: &str| on && (prog != REFUSAL_PROGRAM || refusals);
        for (prog, _) in HOOKS.iter().rev() {
            if !wanted(prog) {
                self.detach_hook(prog)?;
            }
        }
        for (prog, hook) in HOOKS {
            if wanted(prog) && !self.hook_attached(prog) {
                let path = self.hook_pin(prog);
                if let Some(link) = attach(ebpf, &self.btf, prog, hook, path.as_deref())? {
                    self.links.push((prog, link));
                }
            }
        }
        self.hooked = on;
        Ok(())
    }

    fn hook_pin(&self, prog: &str) -> Option<PathBuf> {
        self.pin.as_deref().map(|d| link_pin(d, prog))
    }

    fn hook_attached(&self, prog: &str) -> bool {
        self.links.iter().any(|(p, _)| *p == prog)
            || self.hook_pin(prog).is_some_and(|p| p.exists())
    }

    /// Detaches syscall program `prog`: drops its link, or unpins it.
    fn detach_hook(&mut self, prog: &'static str) -> Result<(), BpfError> {
        self.links.retain(|(p, _)| *p != prog);
        match self.hook_pin(prog).map(std::fs::remove_file) {
            None | Some(Ok(())) => Ok(()),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Some(Err(e)) => Err(BpfError::Attach {
                program: prog,
                detail: format!("unpinning its link: {e}"),
            }),
        }
    }

    /// Whether the syscall programs are attached.
    pub(super) fn hooked(&self) -> bool {
        self.hooked
    }

    /// Whether the programs were found attached (pinned) and kept.
    pub(super) fn resumed(&self) -> bool {
        self.resumed
    }
}
