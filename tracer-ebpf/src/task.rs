//! The current task and its syscall, read through BTF pointers at offsets from the kernel's
//! BTF: its cgroup, its seccomp mode, the call's ABI and whether it may install a filter.

use core::ptr::read_volatile;

use aya_ebpf::helpers::bpf_get_current_task_btf;
use tracer_common::{filter_bit, COMPAT_IN_REGS, PR_SET_SECCOMP};

use crate::{
    globals::{
        global, CGROUP_KN_OFFSET, CGROUP_PARENT_OFFSET, COMPAT_MASK, COMPAT_OFFSET,
        CSS_CGROUP_OFFSET, CSS_SET_DFL_CGRP_OFFSET, INSTALL_NRS, KERNFS_NODE_ID_OFFSET,
        REGS_ARG0_OFFSET, REGS_CX_OFFSET, REGS_IP_OFFSET, SECCOMP_MODE_OFFSET, TASK_CGROUPS_OFFSET,
    },
    maps::FILTER,
};

/// The current task, as a BTF pointer the verifier lets us load fields through.
#[inline(always)]
pub(crate) fn current_task() -> *const u8 {
    // SAFETY: helper without preconditions; the task outlives the program run.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// Loads the `T` at `offset` of BTF object `base`.
#[inline(always)]
pub(crate) fn load<T: Copy>(base: *const u8, offset: u64) -> T {
    // SAFETY: `base` is a BTF pointer and `offset` comes from the kernel's BTF; the verifier
    // checks the load against the type's layout and turns it into a load that cannot fault.
    unsafe { read_volatile(base.wrapping_add(offset as usize) as *const T) }
}

/// The cgroup v2 of `task` (`task->cgroups->dfl_cgrp`).
#[inline(always)]
pub(crate) fn task_cgroup(task: *const u8) -> *const u8 {
    let cset: *const u8 = load(task, global(&TASK_CGROUPS_OFFSET));
    load(cset, global(&CSS_SET_DFL_CGRP_OFFSET))
}

/// The id of cgroup `cgrp`, as `bpf_get_current_cgroup_id` returns it for a task in it,
/// without the helper call.
#[inline(always)]
pub(crate) fn cgroup_id(cgrp: *const u8) -> u64 {
    let kn: *const u8 = load(cgrp, global(&CGROUP_KN_OFFSET));
    load(kn, global(&KERNFS_NODE_ID_OFFSET))
}

/// The parent of cgroup `cgrp` (`cgrp->self.parent->cgroup`); null at the root.
#[inline(always)]
pub(crate) fn cgroup_parent(cgrp: *const u8) -> *const u8 {
    let css: *const u8 = load(cgrp, global(&CGROUP_PARENT_OFFSET));
    if css.is_null() {
        return css;
    }
    load(css, global(&CSS_CGROUP_OFFSET))
}

/// False when cgroup `id` is certainly not a target (its FILTER bit is clear).
#[inline(always)]
pub(crate) fn maybe_target(id: u64) -> bool {
    let (word, bit) = filter_bit(id);
    FILTER.get(word).is_some_and(|w| w & bit != 0)
}

/// Whether the current task runs under a seccomp filter (mode != SECCOMP_MODE_DISABLED).
#[inline(always)]
pub(crate) fn has_seccomp(task: *const u8) -> bool {
    load::<u32>(task, global(&SECCOMP_MODE_OFFSET)) != 0
}

/// Whether the current syscall, entered through `regs`, uses the 32-bit compat ABI (x86_64:
/// `int 0x80`, numbered in the i386 table; arm64: AArch32, numbered in arm's, which user
/// space names by number). On arm64 the test is one bit of the saved `pstate`. On x86_64 the
/// exact test reads the task's TS_COMPAT; a native `syscall` leaves `cx == ip` in pt_regs
/// (the instruction saves the return address in rcx), which a 32-bit entry practically
/// never does, so that common case needs no helper call.
#[inline(always)]
pub(crate) fn is_compat(regs: *const u8) -> bool {
    let mask = global(&COMPAT_MASK);
    if mask == 0 {
        return false;
    }
    if mask & COMPAT_IN_REGS != 0 {
        return load::<u32>(regs, global(&COMPAT_OFFSET)) & mask & !COMPAT_IN_REGS != 0;
    }
    let cx: u64 = load(regs, global(&REGS_CX_OFFSET));
    let ip: u64 = load(regs, global(&REGS_IP_OFFSET));
    cx != ip && load::<u32>(current_task(), global(&COMPAT_OFFSET)) & mask != 0
}

/// Whether call `nr` may install a seccomp filter: `seccomp(2)`, or `prctl(PR_SET_SECCOMP)`
/// (any compat `prctl`, whose argument sits in another register).
#[inline(always)]
pub(crate) fn is_install(nr: u32, compat: bool, regs: *const u8) -> bool {
    if compat {
        return nr == global(&INSTALL_NRS[2]) || nr == global(&INSTALL_NRS[3]);
    }
    nr == global(&INSTALL_NRS[0])
        || (nr == global(&INSTALL_NRS[1])
            && load::<u64>(regs, global(&REGS_ARG0_OFFSET)) == PR_SET_SECCOMP)
}
