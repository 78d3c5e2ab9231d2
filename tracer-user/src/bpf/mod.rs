//! Loading and attaching the kernel programs, and reading their maps and ring buffer.
//! This is the only module that talks to the kernel's BPF interface.

pub mod btf;

use std::{
    fs,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{links::FdLink, BtfTracePoint, RawTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use thiserror::Error;
use tracer_common::{
    arg_call, counter, watch_tag, ArgKey, CgroupPath, CgroupRecord, Event, CGROUP_PATH_LEN,
    FILTER_WORDS, MAX_PARENTS,
};

use crate::syscalls::Arch;

#[derive(Debug, Error)]
pub enum BpfError {
    #[error(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error("reading the kernel's BTF: {0}")]
    Btf(#[from] btf::BtfError),
    #[error("tracefs is not mounted and could not be mounted at /sys/kernel/tracing: {0}")]
    Tracefs(String),
    #[error("the cgroup:cgroup_mkdir tracepoint format is not as expected: {0}")]
    MkdirFormat(String),
    #[error("this architecture ({0}) is not supported")]
    Arch(&'static str),
    #[error("loading the eBPF programs failed (is this kernel built with BPF and raw tracepoints?): {0}")]
    Load(String),
    #[error("attaching {program} failed: {detail}")]
    Attach {
        program: &'static str,
        detail: String,
    },
    #[error("BPF map `{map}`: {detail}")]
    Map { map: &'static str, detail: String },
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |e| BpfError::Map {
        map,
        detail: e.to_string(),
    }
}

/// Offsets the kernel programs need, found on the running kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    pub seccomp_mode: u64,
    pub regs_nr: u64,
    pub regs_arg0: u64,
    /// Where in `task_struct` a compat syscall shows, and which bit (0: not told apart).
    pub compat_offset: u64,
    pub compat_mask: u32,
    /// Native numbers of the calls whose first argument is recorded (`arg_call` order).
    pub arg_nrs: [u32; arg_call::COUNT],
    /// Numbers of `seccomp` and `prctl`, native then compat (u32::MAX where there is none):
    /// the calls that may install a seccomp filter.
    pub install_nrs: [u32; 4],
    pub mkdir_root: u64,
    pub mkdir_id: u64,
    pub mkdir_path: u64,
    /// Offsets of `task_struct.cgroups`, `css_set.dfl_cgrp`, `cgroup.kn`, `kernfs_node.id`:
    /// the pointer chain to the task's cgroup v2 id.
    pub cgroup_chain: [u64; 4],
    pub task_pid: u64,
    pub task_tgid: u64,
    /// Offsets of `pt_regs.cx` and `pt_regs.ip` on x86_64 (0 elsewhere, where unused).
    pub regs_cx: u64,
    pub regs_ip: u64,
}

const TRACEFS: &str = "/sys/kernel/tracing";

fn ensure_tracefs() -> Result<(), BpfError> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(());
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .status()
        .map_err(|e| BpfError::Tracefs(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(BpfError::Tracefs(format!("mount exited with {status}")))
    }
}

/// Field offsets from a tracepoint format file (`field:int root;\toffset:8;\tsize:4;...`).
pub fn format_offsets(format: &str, fields: &[&str]) -> Result<Vec<u64>, BpfError> {
    fields
        .iter()
        .map(|&field| {
            format
                .lines()
                .find_map(|line| {
                    let line = line.trim();
                    let decl = line.strip_prefix("field:")?.split(';').next()?;
                    if decl.split_whitespace().last()? != field {
                        return None;
                    }
                    let off = line.split("offset:").nth(1)?.split(';').next()?;
                    off.trim().parse().ok()
                })
                .ok_or_else(|| BpfError::MkdirFormat(format!("no field `{field}`")))
        })
        .collect()
}

impl KernelLayout {
    pub fn detect(arch: Arch) -> Result<Self, BpfError> {
        let data = fs::read("/sys/kernel/btf/vmlinux").map_err(|_| BpfError::NoBtf)?;
        let btf = btf::Btf::parse(&data)?;
        let seccomp_mode = btf.member_offset("task_struct", &["seccomp", "mode"])?;
        let (regs_nr, regs_arg0, compat_offset, compat_mask, regs_cx, regs_ip) = match arch {
            // TS_COMPAT in thread_info.status (arch/x86/include/asm/thread_info.h).
            Arch::X86_64 => (
                btf.member_offset("pt_regs", &["orig_ax"])?,
                btf.member_offset("pt_regs", &["di"])?,
                btf.member_offset("task_struct", &["thread_info", "status"])?,
                0x0002,
                btf.member_offset("pt_regs", &["cx"])?,
                btf.member_offset("pt_regs", &["ip"])?,
            ),
            // AArch32 calls are not told apart: no table names them here.
            Arch::Aarch64 => (
                btf.member_offset("pt_regs", &["syscallno"])?,
                btf.member_offset("pt_regs", &["orig_x0"])?,
                0,
                0,
                0,
                0,
            ),
            Arch::I386 => return Err(BpfError::Arch("i386")),
        };
        let arg_nrs = crate::profile::args::ARG_CALLS.map(|n| arch.number(n).unwrap_or(u32::MAX));
        let install_nrs = install_nrs(arch);
        ensure_tracefs()?;
        let format =
            fs::read_to_string(Path::new(TRACEFS).join("events/cgroup/cgroup_mkdir/format"))
                .map_err(|e| BpfError::MkdirFormat(e.to_string()))?;
        let offs = format_offsets(&format, &["root", "id", "path"])?;
        let cgroup_chain = [
            btf.member_offset("task_struct", &["cgroups"])?,
            btf.member_offset("css_set", &["dfl_cgrp"])?,
            btf.member_offset("cgroup", &["kn"])?,
            btf.member_offset("kernfs_node", &["id"])?,
        ]
        .map(u64::from);
        Ok(Self {
            seccomp_mode: seccomp_mode.into(),
            regs_nr: regs_nr.into(),
            regs_arg0: regs_arg0.into(),
            compat_offset: compat_offset.into(),
            compat_mask,
            arg_nrs,
            install_nrs,
            mkdir_root: offs[0],
            mkdir_id: offs[1],
            mkdir_path: offs[2],
            cgroup_chain,
            task_pid: btf.member_offset("task_struct", &["pid"])?.into(),
            task_tgid: btf.member_offset("task_struct", &["tgid"])?.into(),
            regs_cx: regs_cx.into(),
            regs_ip: regs_ip.into(),
        })
    }
}

/// The numbers of `seccomp` and `prctl` on `arch`, then on its compat ABI.
fn install_nrs(arch: Arch) -> [u32; 4] {
    let nr = |a: Option<Arch>, name: &str| a.and_then(|a| a.number(name)).unwrap_or(u32::MAX);
    let compat = arch.compat();
    [
        nr(Some(arch), "seccomp"),
        nr(Some(arch), "prctl"),
        nr(compat, "seccomp"),
        nr(compat, "prctl"),
    ]
}

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
    let attach_err = |e: aya::programs::ProgramError| BpfError::Attach {
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
                        aya::programs::ProgramError::IOError(std::io::Error::other(format!(
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

/// Word and bit of cgroup `id` in the kernel's FILTER bitmap (as the kernel programs compute it).
fn filter_bit(id: u64) -> (u32, u64) {
    (((id / 64) as u32) & (FILTER_WORDS - 1), 1 << (id % 64))
}

fn kernel_btf() -> Result<aya::Btf, BpfError> {
    aya::Btf::from_sys_fs().map_err(|e| BpfError::Load(format!("reading the kernel's BTF: {e}")))
}

/// Where the link of `program` is pinned in bpffs directory `dir`.
fn link_pin(dir: &Path, program: &str) -> PathBuf {
    dir.join(format!("link_{program}"))
}

fn pin_link(program: &'static str, link: FdLink, path: &Path) -> Result<(), BpfError> {
    link.pin(path).map_err(|e| BpfError::Attach {
        program,
        detail: format!("pinning at {}: {e}", path.display()),
    })?;
    Ok(())
}

/// Benchmark programs: `floor` (empty, on sys_enter), `floor_exit` (empty, on sys_exit) and
/// the `probe_*` pieces of the filter (on sys_enter).
pub const BENCH_PROGRAMS: [&str; 4] = ["floor", "floor_exit", "probe_helper", "probe_hash"];

/// Attaches benchmark programs (see [`BENCH_PROGRAMS`]) alone; detached on drop.
pub fn attach_floor(layout: &KernelLayout, programs: &[String]) -> Result<Ebpf, BpfError> {
    let mut ebpf = loader(layout)
        .load(crate::EBPF_OBJECT)
        .map_err(|e| BpfError::Load(format!("{e:#}")))?;
    let btf = kernel_btf()?;
    for name in programs {
        let Some(&prog) = BENCH_PROGRAMS.iter().find(|p| *p == name) else {
            return Err(BpfError::Load(format!("no benchmark program {name}")));
        };
        let tracepoint = if prog == "floor_exit" {
            "sys_exit"
        } else {
            "sys_enter"
        };
        // Raw tracepoint links stay in `ebpf`.
        attach(&mut ebpf, &btf, prog, Hook::Raw(tracepoint), None)?;
    }
    Ok(ebpf)
}

/// A loader with the kernel's layout written into the programs' read-only globals.
fn loader(layout: &KernelLayout) -> EbpfLoader<'_> {
    let mut loader = EbpfLoader::new();
    loader
        .override_global("SECCOMP_MODE_OFFSET", &layout.seccomp_mode, true)
        .override_global("REGS_NR_OFFSET", &layout.regs_nr, true)
        .override_global("REGS_ARG0_OFFSET", &layout.regs_arg0, true)
        .override_global("COMPAT_OFFSET", &layout.compat_offset, true)
        .override_global("COMPAT_MASK", &layout.compat_mask, true)
        .override_global("ARG_NRS", &layout.arg_nrs, true)
        .override_global("INSTALL_NRS", &layout.install_nrs, true)
        .override_global("MKDIR_ROOT_OFFSET", &layout.mkdir_root, true)
        .override_global("MKDIR_ID_OFFSET", &layout.mkdir_id, true)
        .override_global("MKDIR_PATH_OFFSET", &layout.mkdir_path, true)
        .override_global("TASK_CGROUPS_OFFSET", &layout.cgroup_chain[0], true)
        .override_global("CSS_SET_DFL_CGRP_OFFSET", &layout.cgroup_chain[1], true)
        .override_global("CGROUP_KN_OFFSET", &layout.cgroup_chain[2], true)
        .override_global("KERNFS_NODE_ID_OFFSET", &layout.cgroup_chain[3], true)
        .override_global("TASK_PID_OFFSET", &layout.task_pid, true)
        .override_global("TASK_TGID_OFFSET", &layout.task_tgid, true)
        .override_global("REGS_CX_OFFSET", &layout.regs_cx, true)
        .override_global("REGS_IP_OFFSET", &layout.regs_ip, true);
    loader
}

/// Totals of the per-CPU counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub syscalls: u64,
    pub ring_drops: u64,
    pub out_of_range: u64,
    pub refusals: u64,
}

/// The maps of the kernel programs (all pinned by the daemon, so that programs attached by
/// different processes share them).
const MAPS: [&str; 13] = [
    "TARGETS",
    "FILTER",
    "GEN",
    "CPU",
    "INSTALLS",
    "WATCH",
    "ENTERED",
    "ARGS",
    "EVENTS",
    "COUNTERS",
    "PARENT_LENS",
    "ZERO",
    "SCRATCH",
];
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
    ("task_fork", Hook::Btf("sched_process_fork")),
    ("cgroup_attach", Hook::Btf("cgroup_attach_task")),
    ("cgroup_mkdir", Hook::Classic("cgroup", "cgroup_mkdir")),
];

/// The syscall programs, which every syscall on the host pays for once attached: attached
/// only while there is something to record (see [`Tracer::set_hooks`]), in this order, and
/// detached in the reverse one (sys_exit without sys_enter would take calls for refusals).
/// `sys_exit` (refusal detection) is optional.
const HOOKS: [(&str, Hook); 2] = [
    ("sys_enter", Hook::Btf("sys_enter")),
    ("sys_exit", Hook::Btf("sys_exit")),
];
const REFUSAL_PROGRAM: &str = "sys_exit";

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

/// The loaded and attached programs with their maps. Dropping it detaches everything that is
/// not pinned.
pub struct Tracer {
    ebpf: Ebpf,
    btf: aya::Btf,
    /// The bpffs directory of the pinned maps and links, if pinned.
    pin: Option<PathBuf>,
    /// Links of unpinned BTF programs (dropping one detaches it).
    links: Vec<(&'static str, FdLink)>,
    /// Whether sys_exit (refusal detection) is wanted with sys_enter.
    refusals: bool,
    /// Whether the syscall programs ([`HOOKS`]) are attached.
    hooked: bool,
    targets: HashMap<MapData, u64, CgroupRecord>,
    filter: Array<MapData, u64>,
    generation: Array<MapData, u64>,
    args: HashMap<MapData, ArgKey, u8>,
    watch: HashMap<MapData, CgroupPath, u32>,
    counters: PerCpuArray<MapData, u64>,
    parent_lens: Array<MapData, u32>,
    parents: Vec<String>,
    ring: Option<RingBuf<MapData>>,
    /// The programs were already attached by an earlier process (pinned), and kept recording.
    resumed: bool,
}

impl Tracer {
    /// Loads the programs with the kernel's layout and attaches them.
    pub fn load(layout: &KernelLayout, refusals: bool) -> Result<Self, BpfError> {
        Self::load_pinned(layout, None, refusals)
    }

    /// Like [`load`](Self::load); with `pin`, maps and links live in that bpffs directory, so
    /// the kernel keeps recording when this process exits, and a later call with the same
    /// directory picks them up instead of attaching a second copy.
    pub fn load_pinned(
        layout: &KernelLayout,
        pin: Option<&Path>,
        refusals: bool,
    ) -> Result<Self, BpfError> {
        let tgid = std::process::id();
        let mut loader = loader(layout);
        let pin_err = |e: std::io::Error| BpfError::Load(format!("bpffs directory: {e}"));
        let map_paths: Vec<(&str, PathBuf)> = match pin {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(pin_err)?;
                MAPS.iter().map(|&m| (m, dir.join(m))).collect()
            }
            None => Vec::new(),
        };
        for (name, path) in &map_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader
            .override_global("TRACER_TGID", &tgid, true)
            .load(crate::EBPF_OBJECT)
            .map_err(|e| BpfError::Load(format!("{e:#}")))?;

        let mut take = |name: &'static str| {
            ebpf.take_map(name).ok_or(BpfError::Map {
                map: name,
                detail: "missing from the object".into(),
            })
        };
        let targets = HashMap::try_from(take("TARGETS")?).map_err(map_err("TARGETS"))?;
        let args = HashMap::try_from(take("ARGS")?).map_err(map_err("ARGS"))?;
        let filter = Array::try_from(take("FILTER")?).map_err(map_err("FILTER"))?;
        let generation = Array::try_from(take("GEN")?).map_err(map_err("GEN"))?;
        let watch = HashMap::try_from(take("WATCH")?).map_err(map_err("WATCH"))?;
        let counters = PerCpuArray::try_from(take("COUNTERS")?).map_err(map_err("COUNTERS"))?;
        let ring = RingBuf::try_from(take("EVENTS")?).map_err(map_err("EVENTS"))?;
        let parent_lens = Array::try_from(take("PARENT_LENS")?).map_err(map_err("PARENT_LENS"))?;

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
            if let Some(link) = attach(&mut ebpf, &btf, prog, hook, path.as_deref())? {
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

        let mut tracer = Self {
            ebpf,
            btf,
            pin: pin.map(Path::to_path_buf),
            links,
            refusals,
            hooked: false,
            targets,
            filter,
            generation,
            args,
            watch,
            counters,
            parent_lens,
            parents: Vec::new(),
            ring: Some(ring),
            resumed,
        };
        if resumed {
            tracer.reload_parents()?;
        }
        tracer.set_hooks(true)?;
        Ok(tracer)
    }

    /// Attaches the syscall programs ([`HOOKS`]) or detaches them. Detached, no syscall on the
    /// host pays anything and nothing is recorded; the maps keep what was recorded. Links
    /// pinned by an earlier process are taken over; refusal detection turned off since then
    /// is detached.
    pub fn set_hooks(&mut self, on: bool) -> Result<(), BpfError> {
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
                if let Some(link) = attach(&mut self.ebpf, &self.btf, prog, hook, path.as_deref())?
                {
                    self.links.push((prog, link));
                }
            }
        }
        self.hooked = on;
        // Tasks may have installed filters or changed cgroups while nothing watched their
        // syscalls: every CPU looks its task up again.
        if on {
            self.bump_generation()?;
        }
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

    /// Whether the syscall programs are attached (see [`set_hooks`](Self::set_hooks)).
    pub fn hooked(&self) -> bool {
        self.hooked
    }

    /// Whether the programs were found attached (pinned) and kept, with what they recorded.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The ids of every cgroup in the kernel's filter map.
    pub fn cgroups(&self) -> Result<Vec<u64>, BpfError> {
        self.targets
            .keys()
            .filter(|k| !matches!(k, Err(aya::maps::MapError::KeyNotFound)))
            .collect::<Result<_, _>>()
            .map_err(map_err("TARGETS"))
    }

    /// Starts tracing cgroup `id` (keeps what it already recorded if traced before).
    pub fn add_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        const BPF_NOEXIST: u64 = 1;
        match self.targets.insert(id, CgroupRecord::EMPTY, BPF_NOEXIST) {
            Ok(()) => {}
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(map_err("TARGETS")(e)),
        }
        // Record first, then its filter bit, then the new generation: a CPU that looks again
        // finds all three.
        let (word, bit) = filter_bit(id);
        self.set_filter_word(word, self.filter_word(word)? | bit)?;
        self.bump_generation()
    }

    fn filter_word(&self, word: u32) -> Result<u64, BpfError> {
        self.filter.get(&word, 0).map_err(map_err("FILTER"))
    }

    fn set_filter_word(&mut self, word: u32, value: u64) -> Result<(), BpfError> {
        self.filter.set(word, value, 0).map_err(map_err("FILTER"))
    }

    /// Makes every CPU look its task up again (after the targets changed).
    fn bump_generation(&mut self) -> Result<(), BpfError> {
        let g = self.generation.get(&1, 0).map_err(map_err("GEN"))?;
        self.generation
            .set(1, g.wrapping_add(1), 0)
            .map_err(map_err("GEN"))
    }

    /// Clears the filter bit of a cgroup no longer traced, unless another target shares it.
    /// The kernel may set a bit of the same word (adopting a new cgroup) between our read and
    /// write; it inserts the record before it sets the bit, so reading the records again after
    /// the write finds any bit lost that way, and it is set again.
    fn clear_filter_bit(&mut self, id: u64) -> Result<(), BpfError> {
        let (word, bit) = filter_bit(id);
        let in_word = |ids: &[u64]| {
            ids.iter()
                .map(|&i| filter_bit(i))
                .filter(|&(w, _)| w == word)
                .fold(0, |acc, (_, b)| acc | b)
        };
        if in_word(&self.cgroups()?) & bit != 0 {
            return Ok(());
        }
        self.set_filter_word(word, self.filter_word(word)? & !bit)?;
        let needed = in_word(&self.cgroups()?);
        let now = self.filter_word(word)?;
        if now & needed != needed {
            self.set_filter_word(word, now | needed)?;
        }
        Ok(())
    }

    /// What the kernel recorded for cgroup `id`, if it is traced.
    pub fn record(&self, id: u64) -> Result<Option<CgroupRecord>, BpfError> {
        match self.targets.get(&id, 0) {
            Ok(r) => Ok(Some(r)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err("TARGETS")(e)),
        }
    }

    /// The argument values recorded for the cgroups `ids`, in one pass over the map.
    pub fn args(&self, ids: &[u64]) -> Result<Vec<ArgKey>, BpfError> {
        let mut out = Vec::new();
        for key in self.args.keys() {
            match key {
                Ok(k) if ids.contains(&k.cgroup_id) => out.push(k),
                Ok(_) => {}
                // A key deleted while iterating restarts nothing we need.
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err("ARGS")(e)),
            }
        }
        Ok(out)
    }

    /// Stops tracing cgroup `id` and forgets what the kernel recorded for it.
    pub fn remove_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        match self.targets.remove(&id) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err("TARGETS")(e)),
        }
        self.clear_filter_bit(id)?;
        self.bump_generation()?;
        for key in self.args(&[id])? {
            match self.args.remove(&key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err("ARGS")(e)),
            }
        }
        Ok(())
    }

    /// Adopts cgroup `path` (relative to the cgroup2 root) whenever it is created; `tag` comes
    /// back in the ADOPTED event.
    pub fn watch(&mut self, path: &str, tag: u32) -> Result<(), BpfError> {
        let key = CgroupPath::new(path.as_bytes()).ok_or(BpfError::Map {
            map: "WATCH",
            detail: "empty cgroup path".into(),
        })?;
        self.watch.insert(key, tag, 0).map_err(map_err("WATCH"))
    }

    /// Adopts provisionally every cgroup created under `parent` (ADOPTED events tagged
    /// `watch_tag::PARENT`), so that a container is traced from its first syscall even when
    /// its id becomes known only after its cgroup was created. Returns false when all
    /// `MAX_PARENTS` slots are in use.
    pub fn watch_parent(&mut self, parent: &str) -> Result<bool, BpfError> {
        if self.parents.iter().any(|p| p == parent) {
            return Ok(true);
        }
        let slot = self.parents.len() as u32;
        if slot >= MAX_PARENTS || parent.len() >= CGROUP_PATH_LEN - 1 {
            return Ok(false);
        }
        self.watch(parent, watch_tag::PARENT)?;
        self.parent_lens
            .set(slot, parent.len() as u32, 0)
            .map_err(map_err("PARENT_LENS"))?;
        self.parents.push(parent.to_string());
        Ok(true)
    }

    /// Rebuilds `parents` from the pinned maps: the WATCH keys tagged PARENT, in the order of
    /// their PARENT_LENS slots.
    fn reload_parents(&mut self) -> Result<(), BpfError> {
        let mut paths: Vec<String> = Vec::new();
        for entry in self.watch.iter() {
            let (key, tag) = entry.map_err(map_err("WATCH"))?;
            if tag == watch_tag::PARENT {
                let end = key
                    .bytes
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(key.bytes.len());
                paths.push(String::from_utf8_lossy(&key.bytes[..end]).into_owned());
            }
        }
        for slot in 0..MAX_PARENTS {
            let len = self
                .parent_lens
                .get(&slot, 0)
                .map_err(map_err("PARENT_LENS"))?;
            if len == 0 {
                break;
            }
            if let Some(i) = paths.iter().position(|p| p.len() == len as usize) {
                self.parents.push(paths.remove(i));
            }
        }
        Ok(())
    }

    /// The parent directories watched with [`watch_parent`](Self::watch_parent).
    pub fn parents(&self) -> &[String] {
        &self.parents
    }

    pub fn unwatch(&mut self, path: &str) -> Result<(), BpfError> {
        let Some(key) = CgroupPath::new(path.as_bytes()) else {
            return Ok(());
        };
        match self.watch.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err("WATCH")(e)),
        }
    }

    pub fn counters(&self) -> Result<Counters, BpfError> {
        let sum = |i: u32| -> Result<u64, BpfError> {
            Ok(self
                .counters
                .get(&i, 0)
                .map_err(map_err("COUNTERS"))?
                .iter()
                .sum())
        };
        Ok(Counters {
            syscalls: sum(counter::SYSCALLS)?,
            ring_drops: sum(counter::RING_DROPS)?,
            out_of_range: sum(counter::OUT_OF_RANGE)?,
            refusals: sum(counter::REFUSALS)?,
        })
    }

    /// The ring buffer, for a reader task; can be taken once.
    pub fn take_events(&mut self) -> Option<EventReader> {
        self.ring.take().map(|ring| EventReader { ring })
    }
}

/// Reads first-sighting events from the ring buffer.
pub struct EventReader {
    ring: RingBuf<MapData>,
}

impl EventReader {
    /// The next event, if any is queued (never blocks).
    pub fn pop(&mut self) -> Option<Event> {
        loop {
            let item = self.ring.next()?;
            if item.len() < std::mem::size_of::<Event>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole `Event` (length checked above); read_unaligned
            // copes with any alignment of the ring buffer slice.
            return Some(unsafe { std::ptr::read_unaligned(item.as_ptr() as *const Event) });
        }
    }
}

impl AsRawFd for EventReader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ring.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_calls_by_abi() {
        assert_eq!(install_nrs(Arch::X86_64), [317, 157, 354, 172]);
        assert_eq!(install_nrs(Arch::Aarch64), [277, 167, u32::MAX, u32::MAX]);
    }

    #[test]
    fn mkdir_format_offsets() {
        let format = "name: cgroup_mkdir\nID: 544\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int root;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:int level;\toffset:12;\tsize:4;\tsigned:1;\n\
            \tfield:u64 id;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;\n";
        assert_eq!(
            format_offsets(format, &["root", "id", "path"]).unwrap(),
            [8, 16, 24]
        );
        assert!(format_offsets(format, &["nope"]).is_err());
    }
}
