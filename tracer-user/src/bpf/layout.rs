//! The kernel's layout: the struct offsets, tracepoint record offsets and syscall numbers the
//! kernel programs need, found on the running kernel, and written into the programs'
//! read-only globals before they are loaded.

use std::{fs, path::Path};

use aya::{EbpfLoader, Pod};
use tracer_common::{arg_call, globals, COMPAT_IN_REGS};

use super::{btf, BpfError};
use crate::syscalls::Arch;

/// Offsets the kernel programs need, found on the running kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    pub seccomp_mode: u64,
    pub regs_nr: u64,
    pub regs_arg0: u64,
    /// Where a compat syscall shows, and which bit (0: not told apart): see [`AbiLayout`].
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
    pub mkdir_level: u64,
    /// Offsets of `task_struct.cgroups`, `css_set.dfl_cgrp`, `cgroup.kn`, `kernfs_node.id`:
    /// the pointer chain to the task's cgroup v2 id.
    pub cgroup_chain: [u64; 4],
    /// Offsets of `cgroup.self.parent` and `cgroup_subsys_state.cgroup`: the step from a
    /// cgroup to its parent, so that a target's descendants are traced as the target.
    pub cgroup_parent: [u64; 2],
    pub task_pid: u64,
    pub task_tgid: u64,
    /// Offsets of `pt_regs.cx` and `pt_regs.ip` on x86_64 (0 elsewhere, where unused).
    pub regs_cx: u64,
    pub regs_ip: u64,
}

/// How the kernel programs read a syscall's number, first argument and ABI on one
/// architecture: offsets in `pt_regs` and `task_struct`, from the kernel's BTF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AbiLayout {
    regs_nr: u64,
    regs_arg0: u64,
    /// Offset of the word that tells a compat call, and the bit to test, with
    /// `COMPAT_IN_REGS` when the word is in `pt_regs` rather than `task_struct`.
    compat_offset: u64,
    compat_mask: u32,
    /// `pt_regs.cx` and `pt_regs.ip` (x86_64 only: `is_compat`'s shortcut), else 0.
    regs_cx: u64,
    regs_ip: u64,
}

/// TS_COMPAT in x86_64's `thread_info.status` (arch/x86/include/asm/thread_info.h): set
/// while the task is in a 32-bit syscall.
const X86_TS_COMPAT: u32 = 0x0002;
/// PSR_MODE32_BIT, M[4] of arm64's saved `pstate`: the exception came from AArch32. An
/// architectural bit, where TIF_32BIT's number is the kernel's own (22 up to 6.18 at least,
/// and a 2026 rework of the arm64 TIF bits renumbers it).
const ARM64_PSR_MODE32: u32 = 0x10;

impl AbiLayout {
    /// The layout of `arch`, with `member` giving a struct member's byte offset.
    fn of(
        arch: Arch,
        member: impl Fn(&str, &[&str]) -> Result<u32, btf::BtfError>,
    ) -> Result<Self, BpfError> {
        let off = |s: &str, path: &[&str]| member(s, path).map(u64::from);
        Ok(match arch {
            Arch::X86_64 => Self {
                regs_nr: off("pt_regs", &["orig_ax"])?,
                regs_arg0: off("pt_regs", &["di"])?,
                compat_offset: off("task_struct", &["thread_info", "status"])?,
                compat_mask: X86_TS_COMPAT,
                regs_cx: off("pt_regs", &["cx"])?,
                regs_ip: off("pt_regs", &["ip"])?,
            },
            // AArch32 calls are told apart and recorded as compat calls; no table names them
            // here (`Arch::compat` is None), so user space shows them by number.
            Arch::Aarch64 => Self {
                regs_nr: off("pt_regs", &["syscallno"])?,
                regs_arg0: off("pt_regs", &["orig_x0"])?,
                compat_offset: off("pt_regs", &["pstate"])?,
                compat_mask: COMPAT_IN_REGS | ARM64_PSR_MODE32,
                regs_cx: 0,
                regs_ip: 0,
            },
            Arch::I386 => return Err(BpfError::Arch("i386")),
        })
    }
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
        let abi = AbiLayout::of(arch, |s, path| btf.member_offset(s, path))?;
        let arg_nrs = crate::profile::args::ARG_CALLS.map(|n| arch.number(n).unwrap_or(u32::MAX));
        let install_nrs = install_nrs(arch);
        ensure_tracefs()?;
        let format =
            fs::read_to_string(Path::new(TRACEFS).join("events/cgroup/cgroup_mkdir/format"))
                .map_err(|e| BpfError::MkdirFormat(e.to_string()))?;
        let offs = format_offsets(&format, &["root", "id", "path", "level"])?;
        let cgroup_chain = [
            btf.member_offset("task_struct", &["cgroups"])?,
            btf.member_offset("css_set", &["dfl_cgrp"])?,
            btf.member_offset("cgroup", &["kn"])?,
            btf.member_offset("kernfs_node", &["id"])?,
        ]
        .map(u64::from);
        let cgroup_parent = [
            btf.member_offset("cgroup", &["self", "parent"])?,
            btf.member_offset("cgroup_subsys_state", &["cgroup"])?,
        ]
        .map(u64::from);
        Ok(Self {
            seccomp_mode: seccomp_mode.into(),
            regs_nr: abi.regs_nr,
            regs_arg0: abi.regs_arg0,
            compat_offset: abi.compat_offset,
            compat_mask: abi.compat_mask,
            arg_nrs,
            install_nrs,
            mkdir_root: offs[0],
            mkdir_id: offs[1],
            mkdir_path: offs[2],
            mkdir_level: offs[3],
            cgroup_chain,
            cgroup_parent,
            task_pid: btf.member_offset("task_struct", &["pid"])?.into(),
            task_tgid: btf.member_offset("task_struct", &["tgid"])?.into(),
            regs_cx: abi.regs_cx,
            regs_ip: abi.regs_ip,
        })
    }

    /// Hands every global the programs read to `out`: this layout, and `tgid`, the tracer's
    /// own process (never recorded). The one list of them, so that the loader and the
    /// contract test (`super::contract`) cannot disagree.
    pub(super) fn write_globals<'a>(&'a self, tgid: &'a u32, out: &mut impl GlobalSink<'a>) {
        out.global(globals::SECCOMP_MODE_OFFSET, &self.seccomp_mode);
        out.global(globals::REGS_NR_OFFSET, &self.regs_nr);
        out.global(globals::REGS_ARG0_OFFSET, &self.regs_arg0);
        out.global(globals::COMPAT_OFFSET, &self.compat_offset);
        out.global(globals::COMPAT_MASK, &self.compat_mask);
        out.global(globals::ARG_NRS, &self.arg_nrs);
        out.global(globals::INSTALL_NRS, &self.install_nrs);
        out.global(globals::MKDIR_ROOT_OFFSET, &self.mkdir_root);
        out.global(globals::MKDIR_ID_OFFSET, &self.mkdir_id);
        out.global(globals::MKDIR_PATH_OFFSET, &self.mkdir_path);
        out.global(globals::MKDIR_LEVEL_OFFSET, &self.mkdir_level);
        out.global(globals::TASK_CGROUPS_OFFSET, &self.cgroup_chain[0]);
        out.global(globals::CSS_SET_DFL_CGRP_OFFSET, &self.cgroup_chain[1]);
        out.global(globals::CGROUP_KN_OFFSET, &self.cgroup_chain[2]);
        out.global(globals::KERNFS_NODE_ID_OFFSET, &self.cgroup_chain[3]);
        out.global(globals::CGROUP_PARENT_OFFSET, &self.cgroup_parent[0]);
        out.global(globals::CSS_CGROUP_OFFSET, &self.cgroup_parent[1]);
        out.global(globals::TASK_PID_OFFSET, &self.task_pid);
        out.global(globals::TASK_TGID_OFFSET, &self.task_tgid);
        out.global(globals::REGS_CX_OFFSET, &self.regs_cx);
        out.global(globals::REGS_IP_OFFSET, &self.regs_ip);
        out.global(globals::TRACER_TGID, tgid);
    }

    /// A loader with every global written (see [`write_globals`](Self::write_globals)).
    pub(super) fn loader<'a>(&'a self, tgid: &'a u32) -> EbpfLoader<'a> {
        let mut loader = EbpfLoader::new();
        self.write_globals(tgid, &mut loader);
        loader
    }
}

/// Where [`KernelLayout::write_globals`] puts each global: a loader, or a test's record.
pub(super) trait GlobalSink<'a> {
    fn global<T: Pod>(&mut self, name: &'static str, value: &'a T);
}

impl<'a> GlobalSink<'a> for EbpfLoader<'a> {
    fn global<T: Pod>(&mut self, name: &'static str, value: &'a T) {
        // Must exist: a global missing from the object is a build out of step with this code.
        self.override_global(name, value, true);
    }
}

/// `seccomp` and `prctl` in arm's (EABI) table (arch/arm/tools/syscall.tbl), AArch32's calls
/// on arm64, which has no table here.
const ARM_SECCOMP: u32 = 383;
const ARM_PRCTL: u32 = 172;

/// The numbers of `seccomp` and `prctl` on `arch`, then on its compat ABI.
fn install_nrs(arch: Arch) -> [u32; 4] {
    let nr = |a: Option<Arch>, name: &str| a.and_then(|a| a.number(name)).unwrap_or(u32::MAX);
    let (compat_seccomp, compat_prctl) = match arch {
        Arch::Aarch64 => (ARM_SECCOMP, ARM_PRCTL),
        _ => (nr(arch.compat(), "seccomp"), nr(arch.compat(), "prctl")),
    };
    [
        nr(Some(arch), "seccomp"),
        nr(Some(arch), "prctl"),
        compat_seccomp,
        compat_prctl,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_calls_by_abi() {
        assert_eq!(install_nrs(Arch::X86_64), [317, 157, 354, 172]);
        assert_eq!(install_nrs(Arch::Aarch64), [277, 167, 383, 172]);
    }

    /// Offsets as a fake BTF would give them: a distinct number per (struct, path).
    fn fake_member(s: &str, path: &[&str]) -> Result<u32, btf::BtfError> {
        Ok(match (s, path) {
            ("pt_regs", ["orig_ax"]) => 120,
            ("pt_regs", ["di"]) => 112,
            ("pt_regs", ["cx"]) => 88,
            ("pt_regs", ["ip"]) => 128,
            ("task_struct", ["thread_info", "status"]) => 12,
            ("pt_regs", ["syscallno"]) => 280,
            ("pt_regs", ["orig_x0"]) => 272,
            ("pt_regs", ["pstate"]) => 264,
            _ => {
                return Err(btf::BtfError::NoMember {
                    owner: s.into(),
                    member: path.join("."),
                })
            }
        })
    }

    #[test]
    fn compat_calls_are_told_by_the_task_on_x86_64_and_by_pstate_on_arm64() {
        let x86 = AbiLayout::of(Arch::X86_64, fake_member).unwrap();
        // TS_COMPAT in task_struct, with the cx == ip shortcut.
        assert_eq!((x86.compat_offset, x86.compat_mask), (12, 0x2));
        assert_eq!(x86.compat_mask & COMPAT_IN_REGS, 0);
        assert_eq!((x86.regs_cx, x86.regs_ip), (88, 128));
        assert_eq!((x86.regs_nr, x86.regs_arg0), (120, 112));

        let arm = AbiLayout::of(Arch::Aarch64, fake_member).unwrap();
        // AArch32 is told apart (no longer a mask of 0, which named its calls from the
        // aarch64 table): PSR_MODE32_BIT of pstate in pt_regs.
        assert_eq!(
            (arm.compat_offset, arm.compat_mask),
            (264, COMPAT_IN_REGS | 0x10)
        );
        assert_eq!((arm.regs_nr, arm.regs_arg0), (280, 272));
        // And named by number: there is no AArch32 table.
        assert_eq!(Arch::Aarch64.compat(), None);

        assert!(matches!(
            AbiLayout::of(Arch::I386, fake_member),
            Err(BpfError::Arch(_))
        ));
    }

    /// On the running kernel's BTF (world-readable: no root), every member the host's layout
    /// names exists: on arm64, `pstate` inside `pt_regs`' anonymous union.
    #[test]
    fn the_running_kernel_has_the_abi_members() {
        let data = match fs::read("/sys/kernel/btf/vmlinux") {
            Ok(d) => d,
            Err(e) if std::env::var_os("CI").is_some() => panic!("no kernel BTF under CI: {e}"),
            Err(_) => return,
        };
        let btf = btf::Btf::parse(&data).unwrap();
        let arch = Arch::host().expect("a supported host");
        let abi = AbiLayout::of(arch, |s, p| btf.member_offset(s, p)).unwrap();
        assert!(abi.compat_offset > 0 && abi.regs_nr > 0);
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
            format_offsets(format, &["root", "id", "path", "level"]).unwrap(),
            [8, 16, 24, 12]
        );
        assert!(format_offsets(format, &["nope"]).is_err());
    }
}
