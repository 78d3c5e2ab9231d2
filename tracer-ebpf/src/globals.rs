//! The read-only globals user space writes before loading (`KernelLayout::write_globals`):
//! kernel struct and tracepoint offsets, syscall numbers, the tracer's own tgid.

use core::ptr::read_volatile;

use tracer_common::{arg_call, BITMAP_WORDS};

// Set by user space before loading (read-only data, so the verifier sees them as constants),
// by the names in `tracer_common::globals`. `#[no_mangle]` needs the name spelled here, so the
// contract test (tracer-user/src/bpf/contract.rs) checks the two against the built object.
//
// They stay separate statics rather than one `#[repr(C)]` struct. The verifier should read
// either as constants (both are constant-offset loads from the frozen .rodata map), and a
// struct compiles smaller (tried: sys_enter 731 -> 713 instruction slots, sys_exit 487 -> 466; the
// cached fast path unchanged) because LLVM keeps one base pointer in a register instead of a
// 64-bit immediate per load. But that changes the refresh path's register allocation, which
// only loading under the verifier and the benchmark can clear. User space writes them all
// from one place (`KernelLayout::write_globals`).

/// Offset of `task_struct.seccomp.mode`, from the kernel's BTF.
#[no_mangle]
pub(crate) static SECCOMP_MODE_OFFSET: u64 = 0;
/// Offset of the syscall number in `struct pt_regs` (`orig_ax` on x86_64, `syscallno` on arm64).
#[no_mangle]
pub(crate) static REGS_NR_OFFSET: u64 = 0;
/// Offset of the u32 that tells a compat (32-bit ABI) syscall: in `task_struct` on x86_64
/// (`thread_info.status`, TS_COMPAT), in `pt_regs` on arm64 (`pstate`, PSR_MODE32_BIT).
#[no_mangle]
pub(crate) static COMPAT_OFFSET: u64 = 0;
/// Bit of that word, with `tracer_common::COMPAT_IN_REGS` when the word is in `pt_regs`; 0
/// when the architecture's compat ABI is not told apart.
#[no_mangle]
pub(crate) static COMPAT_MASK: u32 = 0;
/// Offset of the first syscall argument in `struct pt_regs` (`di`; `orig_x0` on arm64, which
/// still holds it at sys_exit).
#[no_mangle]
pub(crate) static REGS_ARG0_OFFSET: u64 = 0;
/// Native numbers of the calls whose first argument is recorded, by `arg_call` index.
#[no_mangle]
pub(crate) static ARG_NRS: [u32; arg_call::COUNT] = [u32::MAX; arg_call::COUNT];
/// Numbers of the calls that may install a seccomp filter: native `seccomp` and `prctl`, then
/// compat `seccomp` and `prctl` (u32::MAX where there is none).
#[no_mangle]
pub(crate) static INSTALL_NRS: [u32; 4] = [u32::MAX; 4];
/// The tracer's own process, never recorded.
#[no_mangle]
pub(crate) static TRACER_TGID: u32 = 0;
/// Field offsets of the `cgroup:cgroup_mkdir` tracepoint record, from its format file.
#[no_mangle]
pub(crate) static MKDIR_ROOT_OFFSET: u64 = 8;
#[no_mangle]
pub(crate) static MKDIR_ID_OFFSET: u64 = 16;
#[no_mangle]
pub(crate) static MKDIR_PATH_OFFSET: u64 = 24;
#[no_mangle]
pub(crate) static MKDIR_LEVEL_OFFSET: u64 = 12;

/// Offsets of the pointer chain `task->cgroups->dfl_cgrp->kn->id` (the task's cgroup v2 id).
#[no_mangle]
pub(crate) static TASK_CGROUPS_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static CSS_SET_DFL_CGRP_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static CGROUP_KN_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static KERNFS_NODE_ID_OFFSET: u64 = 0;
/// Offsets of `cgroup.self.parent` and `cgroup_subsys_state.cgroup`: a cgroup's parent is
/// `cgrp->self.parent->cgroup` (NULL `self.parent` at the root).
#[no_mangle]
pub(crate) static CGROUP_PARENT_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static CSS_CGROUP_OFFSET: u64 = 0;

/// Offsets of `task_struct.pid` and `task_struct.tgid`.
#[no_mangle]
pub(crate) static TASK_PID_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static TASK_TGID_OFFSET: u64 = 0;
/// Offsets of `pt_regs.cx` and `pt_regs.ip` (x86_64 only; see `is_compat`).
#[no_mangle]
pub(crate) static REGS_CX_OFFSET: u64 = 0;
#[no_mangle]
pub(crate) static REGS_IP_OFFSET: u64 = 0;

/// `BITMAP_WORDS - 1`, read through `global` (see `set_bit`).
#[no_mangle]
pub(crate) static WORD_MASK: usize = BITMAP_WORDS - 1;

#[inline(always)]
pub(crate) fn global<T: Copy>(v: &'static T) -> T {
    // SAFETY: reading a static; volatile so the compiler keeps the load that user space patched.
    unsafe { read_volatile(v) }
}
