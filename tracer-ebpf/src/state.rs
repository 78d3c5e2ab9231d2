//! The per-CPU record of the running task ([`CpuState`]) and what invalidates it: the
//! generation, seccomp installs under way, and the task's in-syscall slot.

use core::{
    intrinsics::{atomic_xadd, AtomicOrdering},
    ptr::{addr_of_mut, read_volatile},
};

use tracer_common::{entered_index, CgroupRecord, SyscallBits, BITMAP_WORDS, SUBTREE_LEVELS};

use crate::{
    globals::{global, TASK_PID_OFFSET, TASK_TGID_OFFSET, TRACER_TGID},
    maps::{CPU, ENTERED, GEN, INSTALLS, TARGETS},
    task::{cgroup_id, cgroup_parent, current_task, has_seccomp, load, maybe_target, task_cgroup},
};

/// What sys_enter and sys_exit know about the task running on this CPU, so that the common
/// cases, "not a target" and "a target repeating a known call", need no helper call and no
/// hash lookup. Valid while `regs` is the running task's pt_regs address (unique among live
/// tasks) and `gen` the current generation.
#[repr(C)]
pub(crate) struct CpuState {
    pub(crate) regs: u64,
    pub(crate) gen: u64,
    /// The id of the target the task is traced as (its cgroup or the nearest traced ancestor
    /// of it), else 0.
    pub(crate) cgroup: u64,
    pub(crate) pid_tgid: u64,
    /// 1 once the task runs under a seccomp filter (a filter is never removed).
    pub(crate) filtered: u64,
    /// The native `allowed` and `setup` bits of `cgroup` as this CPU last saw them: calls
    /// known already.
    pub(crate) allowed: SyscallBits,
    pub(crate) setup: SyscallBits,
}

#[inline(always)]
pub(crate) fn generation() -> u64 {
    let kernel = GEN.get(0).copied().unwrap_or(0);
    kernel.wrapping_add(GEN.get(1).copied().unwrap_or(0))
}

/// Adds one to the kernel's generation: every CPU's [`CpuState`] must be looked up again.
#[inline(always)]
pub(crate) fn bump_generation() {
    if let Some(g) = GEN.get_ptr_mut(0) {
        // SAFETY: array slot pointer from the map, valid and aligned; changed atomically only.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(g, 1) };
    }
}

/// Whether a target's seccomp install is under way (see [`INSTALLS`]).
#[inline(always)]
pub(crate) fn installing() -> bool {
    INSTALLS.get(0).is_some_and(|n| *n != 0)
}

#[inline(always)]
pub(crate) fn begin_install() {
    if let Some(n) = INSTALLS.get_ptr_mut(0) {
        // SAFETY: array slot pointer from the map, valid and aligned; changed atomically only.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(n, 1) };
    }
}

/// An install call returned: the generation moves on first, so that no CPU keeps a filter
/// mode read before the install once the count drops.
#[inline(always)]
pub(crate) fn end_install() {
    bump_generation();
    if let Some(n) = INSTALLS.get_ptr_mut(0) {
        // SAFETY: as in `begin_install`. Every install mark comes with an increment; the test
        // is a guard, and if a race ever took the count below zero it would stay non-zero:
        // unfiltered targets would read their mode on every call, losing nothing.
        unsafe {
            if read_volatile(n) != 0 {
                atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(n, u64::MAX);
            }
        }
    }
}

/// The nearest target among the cgroup of `task` and its [`SUBTREE_LEVELS`] closest
/// ancestors, with its record: a task in a target's subtree is traced as the target. Each
/// level costs a few loads and a FILTER bit test; only a set bit costs a hash lookup.
#[inline(always)]
fn traced_cgroup(task: *const u8) -> Option<(u64, *mut CgroupRecord)> {
    let mut cgrp = task_cgroup(task);
    let mut level = 0;
    // Bounded, as the verifier requires of a loop.
    while level <= SUBTREE_LEVELS {
        if cgrp.is_null() {
            return None;
        }
        let id = cgroup_id(cgrp);
        if maybe_target(id) {
            if let Some(record) = TARGETS.get_ptr_mut(id) {
                return Some((id, record));
            }
        }
        cgrp = cgroup_parent(cgrp);
        level += 1;
    }
    None
}

/// Makes `cpu` describe `task` as the target it is traced as, if any (see [`traced_cgroup`]):
/// its id, and the calls it is known to make.
///
/// Out of line (a BPF-to-BPF call): inlined, the walk's registers crowd those of the callers'
/// fast paths, which then spill and reload on every syscall.
#[inline(never)]
fn trace_as_target(cpu: &mut CpuState, task: *const u8) {
    let Some((id, record)) = traced_cgroup(task) else {
        return;
    };
    cpu.cgroup = id;
    let mut i = 0;
    while i < BITMAP_WORDS {
        // SAFETY: `record` is a live map value; `i` is in bounds.
        unsafe {
            cpu.allowed.words[i] = read_volatile(addr_of_mut!((*record).native.allowed.words[i]));
            cpu.setup.words[i] = read_volatile(addr_of_mut!((*record).native.setup.words[i]));
        }
        i += 1;
    }
}

/// The [`CpuState`] of the task entered through `regs`, refreshed when stale: one helper call,
/// then a walk up the task's cgroups (see [`trace_as_target`]), with a hash lookup only where
/// a FILTER bit is set.
#[inline(always)]
pub(crate) fn cpu_state(regs: *const u8) -> Option<&'static mut CpuState> {
    let cpu = CPU.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; syscall tracepoints run their programs with preemption off, so
    // nothing else touches it until this program returns.
    let cpu = unsafe { &mut *cpu };
    let gen = generation();
    // Pointer as a number (the loader is privileged, so the verifier allows it).
    let key = regs as u64;
    if cpu.regs == key && cpu.gen == gen {
        return Some(cpu);
    }
    let task = current_task();
    let tgid: u32 = load(task, global(&TASK_TGID_OFFSET));
    let pid: u32 = load(task, global(&TASK_PID_OFFSET));
    cpu.regs = key;
    cpu.gen = gen;
    cpu.pid_tgid = (tgid as u64) << 32 | pid as u64;
    cpu.filtered = has_seccomp(task) as u64;
    cpu.cgroup = 0;
    if tgid == global(&TRACER_TGID) {
        return Some(cpu);
    }
    trace_as_target(cpu, task);
    Some(cpu)
}

/// Task `tid`'s slot of [`ENTERED`], perhaps shared (see `tracer_common::slot_state`).
#[inline(always)]
pub(crate) fn entered_slot(tid: u32) -> Option<*mut u64> {
    ENTERED.get_ptr_mut(entered_index(tid))
}

/// The [`CpuState`] of the task entered through `regs` if it is a target. "Not a target" is a
/// per-CPU load and a few compares: no helper call, no hash lookup.
#[inline(always)]
pub(crate) fn target_state(regs: *const u8) -> Option<&'static mut CpuState> {
    cpu_state(regs).filter(|cpu| cpu.cgroup != 0)
}
