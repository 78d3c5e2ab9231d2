//! Kernel side of seccomp-tracer: records, per traced cgroup, which syscalls ran (sys_enter),
//! which were refused by the current seccomp filter (sys_exit without sys_enter), and adopts
//! re-created cgroups of watched containers before any task can join them (cgroup_mkdir).
#![no_std]
#![no_main]
// The BPF target's `core` has no atomic read-modify-write methods; the intrinsic lowers to
// BPF_ATOMIC | BPF_OR | BPF_FETCH.
#![allow(internal_features)]
#![feature(core_intrinsics)]

use core::{
    intrinsics::{atomic_or, atomic_xadd, AtomicOrdering},
    ptr::{addr_of_mut, read_volatile, write_volatile},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_task_btf, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user,
    },
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
    EbpfContext,
};
use tracer_common::{
    arg_call, arg_phase, counter, entered, event_kind, filter_bit, is_refusal, parse_entered,
    watch_tag, AbiRecord, ArgKey, CgroupPath, CgroupRecord, Event, SyscallBits, BITMAP_WORDS,
    CGROUP_PATH_LEN, CLONE_NS_FLAGS, ENTERED_SLOTS, FILTER_WORDS, MAX_ARG_VALUES, MAX_PARENTS,
    MAX_SYSCALLS, MAX_TARGETS, MAX_WATCHES, PR_SET_SECCOMP, RING_BYTES, UNSHARE_NS_FLAGS,
};

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
static SECCOMP_MODE_OFFSET: u64 = 0;
/// Offset of the syscall number in `struct pt_regs` (`orig_ax` on x86_64, `syscallno` on arm64).
#[no_mangle]
static REGS_NR_OFFSET: u64 = 0;
/// Offset in `task_struct` of the u32 that tells a compat (32-bit ABI) syscall: x86_64
/// `thread_info.status` (TS_COMPAT), arm64 `thread_info.flags` (TIF_32BIT).
#[no_mangle]
static COMPAT_OFFSET: u64 = 0;
/// Bit of that word; 0 when the architecture's compat ABI is not told apart.
#[no_mangle]
static COMPAT_MASK: u32 = 0;
/// Offset of the first syscall argument in `struct pt_regs` (`di`; `orig_x0` on arm64, which
/// still holds it at sys_exit).
#[no_mangle]
static REGS_ARG0_OFFSET: u64 = 0;
/// Native numbers of the calls whose first argument is recorded, by `arg_call` index.
#[no_mangle]
static ARG_NRS: [u32; arg_call::COUNT] = [u32::MAX; arg_call::COUNT];
/// Numbers of the calls that may install a seccomp filter: native `seccomp` and `prctl`, then
/// compat `seccomp` and `prctl` (u32::MAX where there is none).
#[no_mangle]
static INSTALL_NRS: [u32; 4] = [u32::MAX; 4];
/// The tracer's own process, never recorded.
#[no_mangle]
static TRACER_TGID: u32 = 0;
/// Field offsets of the `cgroup:cgroup_mkdir` tracepoint record, from its format file.
#[no_mangle]
static MKDIR_ROOT_OFFSET: u64 = 8;
#[no_mangle]
static MKDIR_ID_OFFSET: u64 = 16;
#[no_mangle]
static MKDIR_PATH_OFFSET: u64 = 24;

/// Offsets of the pointer chain `task->cgroups->dfl_cgrp->kn->id` (the task's cgroup v2 id).
#[no_mangle]
static TASK_CGROUPS_OFFSET: u64 = 0;
#[no_mangle]
static CSS_SET_DFL_CGRP_OFFSET: u64 = 0;
#[no_mangle]
static CGROUP_KN_OFFSET: u64 = 0;
#[no_mangle]
static KERNFS_NODE_ID_OFFSET: u64 = 0;

/// Offsets of `task_struct.pid` and `task_struct.tgid`.
#[no_mangle]
static TASK_PID_OFFSET: u64 = 0;
#[no_mangle]
static TASK_TGID_OFFSET: u64 = 0;
/// Offsets of `pt_regs.cx` and `pt_regs.ip` (x86_64 only; see `is_compat`).
#[no_mangle]
static REGS_CX_OFFSET: u64 = 0;
#[no_mangle]
static REGS_IP_OFFSET: u64 = 0;

/// `BITMAP_WORDS - 1`, read through `global` (see `set_bit`).
#[no_mangle]
static WORD_MASK: usize = BITMAP_WORDS - 1;

// The maps, by the names in `tracer_common::maps`. aya-ebpf takes a map's name from its
// static, so it is spelled here too; tracer-user/src/bpf/contract.rs checks that the maps of
// the object are exactly `maps::ALL`, which is what user space pins.

/// Bit `id % (FILTER_WORDS * 64)` is set for the cgroup id of every target: a clear bit
/// rules a cgroup out with one inlined array load, before any hash lookup. Set bits may be
/// shared or stale, so TARGETS stays the authority.
#[map]
static FILTER: Array<u64> = Array::with_max_entries(FILTER_WORDS, 0);

/// Generation of what the [`CpuState`]s describe: `[0]` is bumped by the kernel when a task
/// is created or changes cgroup, `[1]` by user space when it changes the targets.
#[map]
static GEN: Array<u64> = Array::with_max_entries(2, 0);

/// What sys_enter and sys_exit know about the task running on this CPU, so that the common
/// cases, "not a target" and "a target repeating a known call", need no helper call and no
/// hash lookup. Valid while `regs` is the running task's pt_regs address (unique among live
/// tasks) and `gen` the current generation.
#[repr(C)]
pub struct CpuState {
    regs: u64,
    gen: u64,
    /// The task's cgroup id when it is a target, else 0.
    cgroup: u64,
    pid_tgid: u64,
    /// 1 once the task runs under a seccomp filter (a filter is never removed).
    filtered: u64,
    /// The native `allowed` and `setup` bits of `cgroup` as this CPU last saw them: calls
    /// known already.
    allowed: SyscallBits,
    setup: SyscallBits,
}

#[map]
static CPU: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

/// Calls of targets that may install a seccomp filter and have not returned yet. While there
/// are any, unfiltered targets read their filter mode on every call; when one returns, the
/// generation moves on, so every CPU reads the modes again.
#[map]
static INSTALLS: Array<u64> = Array::with_max_entries(1, 0);

/// Traced cgroups (by cgroup v2 id) and what they did. Presence in this map is the filter.
#[map]
static TARGETS: HashMap<u64, CgroupRecord> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Cgroup paths to adopt into TARGETS the moment they are created; value = user-space tag
/// (a target index, or a `watch_tag`).
#[map]
static WATCH: HashMap<CgroupPath, u32> = HashMap::with_max_entries(MAX_WATCHES, 0);

/// `tid << 32 | nr` of the syscall each task is inside, indexed by `tid % ENTERED_SLOTS`;
/// cleared at sys_exit. Lets sys_exit tell a refused call from one that ran and failed.
#[map]
static ENTERED: Array<u64> = Array::with_max_entries(ENTERED_SLOTS, 0);

/// Argument values seen for the `arg_call` calls, per traced cgroup (the value is unused).
#[map]
static ARGS: HashMap<ArgKey, u8> = HashMap::with_max_entries(MAX_ARG_VALUES, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Lengths of the paths watched with `watch_tag::PARENT` (0 = unused slot).
#[map]
static PARENT_LENS: Array<u32> = Array::with_max_entries(MAX_PARENTS, 0);

/// One all-zero record, the initial value of cgroups adopted in the kernel.
#[map]
static ZERO: Array<CgroupRecord> = Array::with_max_entries(1, 0);

/// Scratch space for a path key (too large for the 512-byte stack next to everything else).
#[map]
static SCRATCH: PerCpuArray<CgroupPath> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn global<T: Copy>(v: &'static T) -> T {
    // SAFETY: reading a static; volatile so the compiler keeps the load that user space patched.
    unsafe { read_volatile(v) }
}

#[inline(always)]
fn count(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, valid for the duration of the program; no other writer on this CPU.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn emit(cgroup_id: u64, kind: u32, value: u32) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            entry.write(Event {
                // SAFETY: helper without preconditions.
                ts_ns: unsafe { bpf_ktime_get_ns() },
                cgroup_id,
                kind,
                value,
            });
            entry.submit(0);
        }
        None => count(counter::RING_DROPS),
    }
}

/// Whether bit `nr` (< MAX_SYSCALLS) is set.
#[inline(always)]
fn test_bit(bits: &SyscallBits, nr: u32) -> bool {
    let word = (nr / 64) as usize & global(&WORD_MASK);
    // SAFETY: `word` is masked into bounds (see `set_bit` for why not by indexing).
    unsafe { *bits.words.as_ptr().add(word) & (1u64 << (nr % 64)) != 0 }
}

/// Sets bit `nr`; true if it was not set before (a first sighting).
#[inline(always)]
fn set_bit(bits: *mut SyscallBits, nr: u32) -> bool {
    // Callers pass nr < MAX_SYSCALLS, so LLVM drops any bounds check here as redundant, and the
    // verifier, which lost the bound on the way, then refuses the program. A mask loaded from
    // read-only data is opaque to LLVM but a known constant to the verifier.
    const _: () = assert!(BITMAP_WORDS.is_power_of_two());
    let word = (nr / 64) as usize & global(&WORD_MASK);
    let mask = 1u64 << (nr % 64);
    // SAFETY: `bits` points into a map value that lives as long as the program runs and
    // `word` is in bounds; the word is only ever changed atomically.
    unsafe {
        let p = addr_of_mut!((*bits).words).cast::<u64>().add(word);
        // Plain read first: the common case is "already known", which needs no atomic.
        if read_volatile(p) & mask != 0 {
            return false;
        }
        atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(p, mask) & mask == 0
    }
}

/// The current task, as a BTF pointer the verifier lets us load fields through.
#[inline(always)]
fn current_task() -> *const u8 {
    // SAFETY: helper without preconditions; the task outlives the program run.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

/// Loads the `T` at `offset` of BTF object `base`.
#[inline(always)]
fn load<T: Copy>(base: *const u8, offset: u64) -> T {
    // SAFETY: `base` is a BTF pointer and `offset` comes from the kernel's BTF; the verifier
    // checks the load against the type's layout and turns it into a load that cannot fault.
    unsafe { read_volatile(base.wrapping_add(offset as usize) as *const T) }
}

/// The cgroup v2 id of `task`, as `bpf_get_current_cgroup_id` would return it, without the
/// helper call.
#[inline(always)]
fn current_cgroup_id(task: *const u8) -> u64 {
    let cset: *const u8 = load(task, global(&TASK_CGROUPS_OFFSET));
    let cgrp: *const u8 = load(cset, global(&CSS_SET_DFL_CGRP_OFFSET));
    let kn: *const u8 = load(cgrp, global(&CGROUP_KN_OFFSET));
    load(kn, global(&KERNFS_NODE_ID_OFFSET))
}

/// False when cgroup `id` is certainly not a target (its FILTER bit is clear).
#[inline(always)]
fn maybe_target(id: u64) -> bool {
    let (word, bit) = filter_bit(id);
    FILTER.get(word).is_some_and(|w| w & bit != 0)
}

/// Whether the current task runs under a seccomp filter (mode != SECCOMP_MODE_DISABLED).
#[inline(always)]
fn has_seccomp(task: *const u8) -> bool {
    load::<u32>(task, global(&SECCOMP_MODE_OFFSET)) != 0
}

/// Whether the current syscall, entered through `regs`, uses the 32-bit compat ABI (numbered
/// in the i386 table). The exact test reads the task's TS_COMPAT; a native x86_64 `syscall`
/// leaves `cx == ip` in pt_regs (the instruction saves the return address in rcx), which a
/// 32-bit entry practically never does, so that common case needs no helper call.
#[inline(always)]
fn is_compat(regs: *const u8) -> bool {
    let mask = global(&COMPAT_MASK);
    if mask == 0 {
        return false;
    }
    let cx: u64 = load(regs, global(&REGS_CX_OFFSET));
    let ip: u64 = load(regs, global(&REGS_IP_OFFSET));
    cx != ip && load::<u32>(current_task(), global(&COMPAT_OFFSET)) & mask != 0
}

#[inline(always)]
fn generation() -> u64 {
    let kernel = GEN.get(0).copied().unwrap_or(0);
    kernel.wrapping_add(GEN.get(1).copied().unwrap_or(0))
}

/// Adds one to the kernel's generation: every CPU's [`CpuState`] must be looked up again.
#[inline(always)]
fn bump_generation() {
    if let Some(g) = GEN.get_ptr_mut(0) {
        // SAFETY: array slot pointer from the map, valid and aligned; changed atomically only.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(g, 1) };
    }
}

/// Whether call `nr` may install a seccomp filter: `seccomp(2)`, or `prctl(PR_SET_SECCOMP)`
/// (any compat `prctl`, whose argument sits in another register).
#[inline(always)]
fn is_install(nr: u32, compat: bool, regs: *const u8) -> bool {
    if compat {
        return nr == global(&INSTALL_NRS[2]) || nr == global(&INSTALL_NRS[3]);
    }
    nr == global(&INSTALL_NRS[0])
        || (nr == global(&INSTALL_NRS[1])
            && load::<u64>(regs, global(&REGS_ARG0_OFFSET)) == PR_SET_SECCOMP)
}

/// Whether a target's seccomp install is under way (see [`INSTALLS`]).
#[inline(always)]
fn installing() -> bool {
    INSTALLS.get(0).is_some_and(|n| *n != 0)
}

#[inline(always)]
fn begin_install() {
    if let Some(n) = INSTALLS.get_ptr_mut(0) {
        // SAFETY: array slot pointer from the map, valid and aligned; changed atomically only.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(n, 1) };
    }
}

/// An install call returned: the generation moves on first, so that no CPU keeps a filter
/// mode read before the install once the count drops.
#[inline(always)]
fn end_install() {
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

/// The [`CpuState`] of the task entered through `regs`, refreshed when stale: one helper call
/// and, for targets only, one hash lookup.
#[inline(always)]
fn cpu_state(regs: *const u8) -> Option<&'static mut CpuState> {
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
    let id = current_cgroup_id(task);
    let tgid: u32 = load(task, global(&TASK_TGID_OFFSET));
    let pid: u32 = load(task, global(&TASK_PID_OFFSET));
    cpu.regs = key;
    cpu.gen = gen;
    cpu.pid_tgid = (tgid as u64) << 32 | pid as u64;
    cpu.filtered = has_seccomp(task) as u64;
    cpu.cgroup = 0;
    if tgid == global(&TRACER_TGID) || !maybe_target(id) {
        return Some(cpu);
    }
    let record = TARGETS.get_ptr_mut(id)?;
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
    Some(cpu)
}

#[inline(always)]
fn set_overflow(record: *mut CgroupRecord, bit: u32) {
    // SAFETY: `record` is a live map value; the word is only ever changed atomically.
    unsafe {
        atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(
            addr_of_mut!((*record).arg_overflow),
            1u64 << (bit & 63),
        );
    }
}

/// The `arg_call` index of syscall `nr`, or `arg_call::COUNT` for every other call.
#[inline(always)]
fn arg_call_of(nr: u32) -> usize {
    let mut call = 0;
    while call < arg_call::COUNT {
        if global(&ARG_NRS[call]) == nr {
            break;
        }
        call += 1;
    }
    call
}

/// For the few calls Docker's default profile filters by argument, keeps the argument value
/// (see `arg_call`).
#[inline(always)]
fn record_arg(record: *mut CgroupRecord, cgroup: u64, regs: *const u8, call: usize, phase: u32) {
    if call >= arg_call::COUNT {
        return;
    }
    let overflow_bit = phase * 8 + call as u32;
    let arg0: u64 = load(regs, global(&REGS_ARG0_OFFSET));
    let value = match call {
        arg_call::CLONE => arg0 & CLONE_NS_FLAGS,
        arg_call::UNSHARE => arg0 & UNSHARE_NS_FLAGS,
        // clone_args.flags is the struct's first field.
        // SAFETY: bpf_probe_read_user tolerates any address.
        arg_call::CLONE3 => match unsafe { bpf_probe_read_user(arg0 as *const u64) } {
            Ok(flags) => flags & UNSHARE_NS_FLAGS,
            Err(_) => return set_overflow(record, overflow_bit),
        },
        _ => arg0,
    };
    let key = ArgKey {
        cgroup_id: cgroup,
        call: call as u32,
        phase,
        value,
    };
    // SAFETY: the value is only tested for presence.
    if unsafe { ARGS.get(key) }.is_some() {
        return;
    }
    const EEXIST: i32 = 17;
    match ARGS.insert(key, 0, BPF_NOEXIST as u64) {
        Ok(()) => {}
        Err(e) if e == -EEXIST => {}
        // Map full: the rule for this call must stay unconditional.
        Err(_) => set_overflow(record, overflow_bit),
    }
}

#[inline(always)]
fn entered_slot(tid: u32) -> Option<*mut u64> {
    ENTERED.get_ptr_mut(tid % ENTERED_SLOTS)
}

/// The [`CpuState`] of the task entered through `regs` if it is a target. "Not a target" is a
/// per-CPU load and a few compares: no helper call, no hash lookup.
#[inline(always)]
fn target_state(regs: *const u8) -> Option<&'static mut CpuState> {
    cpu_state(regs).filter(|cpu| cpu.cgroup != 0)
}

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    // sys_enter(struct pt_regs *regs, long id)
    let regs: *const u8 = ctx.arg(0);
    let Some(cpu) = target_state(regs) else {
        return 0;
    };
    let cgroup = cpu.cgroup;
    count(counter::SYSCALLS);
    let nr: i64 = ctx.arg(1);
    if nr < 0 || nr >= MAX_SYSCALLS as i64 {
        count(counter::OUT_OF_RANGE);
        return 0;
    }
    let nr = nr as u32;
    let tid = cpu.pid_tgid as u32;
    let compat = is_compat(regs);
    let install = is_install(nr, compat, regs);
    let mut installed = false;
    if let Some(slot) = entered_slot(tid) {
        // SAFETY: array slot pointer from the map, valid and aligned.
        unsafe {
            // Without sys_exit nothing clears the slot: an install mark of this task's is its
            // previous call, which has returned.
            let (prev_tid, _, prev_install) = parse_entered(read_volatile(slot));
            if prev_install && prev_tid == tid {
                end_install();
                installed = true;
            }
            write_volatile(slot, entered(tid, nr, install));
        }
    }
    if install {
        begin_install();
    }
    // A filter, once installed, stays. An unfiltered (setup) task reads its mode again only
    // while an install is under way, or right after its own; when one returns, every CPU
    // looks its task up again.
    if cpu.filtered == 0 && (installed || installing()) && has_seccomp(current_task()) {
        cpu.filtered = 1;
    }
    let filtered = cpu.filtered != 0;
    let call = arg_call_of(nr);
    // A target repeating a call it is known to make: a bit test, and no helper call at all
    // once the task runs under a filter.
    let known = if filtered { &cpu.allowed } else { &cpu.setup };
    if !compat && call == arg_call::COUNT && test_bit(known, nr) {
        return 0;
    }
    let Some(record) = TARGETS.get_ptr_mut(cgroup) else {
        return 0;
    };
    // SAFETY: `record` is a live map value.
    let abi: *mut AbiRecord = unsafe {
        if compat {
            addr_of_mut!((*record).compat)
        } else {
            addr_of_mut!((*record).native)
        }
    };
    if filtered {
        // SAFETY: `abi` points into the live map value.
        if set_bit(unsafe { addr_of_mut!((*abi).allowed) }, nr) {
            let kind = if compat {
                event_kind::SEEN_COMPAT
            } else {
                event_kind::SEEN
            };
            emit(cgroup, kind, nr);
        }
        if !compat {
            set_bit(&mut cpu.allowed, nr);
        }
    } else {
        // SAFETY: as above.
        set_bit(unsafe { addr_of_mut!((*abi).setup) }, nr);
        if !compat {
            set_bit(&mut cpu.setup, nr);
        }
    }
    if !compat {
        let phase = if filtered {
            arg_phase::ALLOWED
        } else {
            arg_phase::SETUP
        };
        record_arg(record, cgroup, regs, call, phase);
    }
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    // sys_exit(struct pt_regs *regs, long ret)
    let regs: *const u8 = ctx.arg(0);
    let Some(cpu) = target_state(regs) else {
        return 0;
    };
    let cgroup = cpu.cgroup;
    let tid = cpu.pid_tgid as u32;
    let mut entered_nr: i64 = -1;
    if let Some(slot) = entered_slot(tid) {
        // SAFETY: array slot pointer from the map, valid and aligned.
        unsafe {
            let (slot_tid, slot_nr, install) = parse_entered(read_volatile(slot));
            if slot_tid == tid {
                entered_nr = slot_nr as i64;
                // Cleared, so a refused call right after an entered one of the same number
                // (clone, then clone with a namespace flag) is still seen as refused.
                write_volatile(slot, 0);
                if install {
                    end_install();
                }
            }
        }
    }
    let ret: i64 = ctx.arg(1);
    // Only EPERM and ENOSYS can be refusals (see is_refusal).
    if ret != -1 && ret != -38 {
        return 0;
    }
    // The low 32 bits hold the number on both little-endian ABIs (x86_64 `orig_ax` is 64-bit,
    // arm64 `syscallno` is s32).
    let nr = load::<i32>(regs, global(&REGS_NR_OFFSET)) as i64;
    if !is_refusal(ret, nr, entered_nr) {
        return 0;
    }
    let Some(record) = TARGETS.get_ptr_mut(cgroup) else {
        return 0;
    };
    count(counter::REFUSALS);
    let nr = nr as u32;
    let compat = is_compat(regs);
    // SAFETY: `record` is a live map value.
    let refused = unsafe {
        if compat {
            addr_of_mut!((*record).compat.refused)
        } else {
            addr_of_mut!((*record).native.refused)
        }
    };
    if set_bit(refused, nr) {
        let kind = if compat {
            event_kind::REFUSED_COMPAT
        } else {
            event_kind::REFUSED
        };
        emit(cgroup, kind, nr);
    }
    if !compat {
        record_arg(record, cgroup, regs, arg_call_of(nr), arg_phase::REFUSED);
    }
    0
}

/// A task was created (possibly on the kernel stack of one that exited, which would make a
/// [`CpuState`] look valid for it): every CPU looks its task up again.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn task_fork(_ctx: BtfTracePointContext) -> i32 {
    bump_generation();
    0
}

/// A task moved to another cgroup (perhaps into or out of a target): as above.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach(_ctx: BtfTracePointContext) -> i32 {
    bump_generation();
    0
}

/// Does nothing: attached alone by the benchmark, it measures the floor, what any program on
/// sys_enter costs every syscall on the host.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn floor(_ctx: RawTracePointContext) -> i32 {
    0
}

/// Benchmark probe: an empty program on sys_exit (what refusal detection's tracepoint costs).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn floor_exit(_ctx: RawTracePointContext) -> i32 {
    0
}

/// Benchmark probe: the filter of a first version, `bpf_get_current_cgroup_id` alone.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn probe_helper(_ctx: RawTracePointContext) -> i32 {
    // SAFETY: helper without preconditions.
    let id = unsafe { bpf_get_current_cgroup_id() };
    (id == 1) as i32
}

/// Benchmark probe: the filter of a first version, the helper and a TARGETS hash lookup.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn probe_hash(_ctx: RawTracePointContext) -> i32 {
    // SAFETY: helper without preconditions.
    let id = unsafe { bpf_get_current_cgroup_id() };
    TARGETS.get_ptr_mut(id).is_some() as i32
}

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup_mkdir(&ctx);
    0
}

#[inline(always)]
fn try_cgroup_mkdir(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets come from this tracepoint's format file; read_at probes the record.
    let root: i32 = unsafe { ctx.read_at(global(&MKDIR_ROOT_OFFSET) as usize) }?;
    // Hierarchy 0 is cgroup2, the only one whose ids bpf_get_current_cgroup_id returns.
    if root != 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let id: u64 = unsafe { ctx.read_at(global(&MKDIR_ID_OFFSET) as usize) }?;
    // SAFETY: as above. `__data_loc` = length << 16 | offset within the record.
    let loc: u32 = unsafe { ctx.read_at(global(&MKDIR_PATH_OFFSET) as usize) }?;
    let key = SCRATCH.get_ptr_mut(0).ok_or(0i64)?;
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let key = unsafe { &mut *key };
    let mut i = 0;
    while i < CGROUP_PATH_LEN {
        key.bytes[i] = 0;
        i += 1;
    }
    let src = (ctx.as_ptr() as *const u8).wrapping_add((loc & 0xffff) as usize);
    // SAFETY: bpf_probe_read_kernel_str_bytes bounds the copy by the destination length.
    unsafe { bpf_probe_read_kernel_str_bytes(src, &mut key.bytes[..CGROUP_PATH_LEN - 1]) }?;
    let tag = match watched(key) {
        Some(tag) => tag,
        None => match watched_parent(src) {
            Some(tag) => tag,
            None => return Ok(()),
        },
    };
    let zero = ZERO.get(0).ok_or(0i64)?;
    TARGETS.insert(id, zero, BPF_NOEXIST as u64)?;
    let (word, bit) = filter_bit(id);
    if let Some(w) = FILTER.get_ptr_mut(word) {
        // SAFETY: array slot pointer from the map; changed atomically only.
        unsafe { atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(w, bit) };
    }
    bump_generation();
    emit(id, event_kind::ADOPTED, tag);
    Ok(())
}

/// Whether the new cgroup at `src` lies under a parent watched with `watch_tag::PARENT`.
/// Parents are few and their lengths known (PARENT_LENS), so each check is one bounded read of
/// that prefix into a zeroed key: no loop over the bytes, which the verifier could not afford.
#[inline(always)]
fn watched_parent(src: *const u8) -> Option<u32> {
    let key = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let key = unsafe { &mut *key };
    let mut k = 0;
    while k < MAX_PARENTS {
        let len = PARENT_LENS.get(k).copied().unwrap_or(0) as usize;
        k += 1;
        if len == 0 || len >= CGROUP_PATH_LEN - 1 {
            continue;
        }
        // SAFETY: bpf_probe_read_kernel tolerates any source address.
        let next: u8 = unsafe { bpf_probe_read_kernel(src.wrapping_add(len)) }.unwrap_or(0);
        if next != b'/' {
            continue;
        }
        key.bytes = [0; CGROUP_PATH_LEN];
        // SAFETY: `len` < CGROUP_PATH_LEN bytes into a CGROUP_PATH_LEN buffer; the helper
        // tolerates any source address.
        let ok = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel(
                key.bytes.as_mut_ptr().cast(),
                (len & (CGROUP_PATH_LEN - 1)) as u32,
                src.cast(),
            )
        } == 0;
        if ok && watched(key) == Some(watch_tag::PARENT) {
            return Some(watch_tag::PARENT);
        }
    }
    None
}

#[inline(always)]
fn watched(key: &CgroupPath) -> Option<u32> {
    // By reference: a copy of the 256-byte key would not fit next to it on the BPF stack.
    #[allow(clippy::needless_borrows_for_generic_args)]
    // SAFETY: the value is only read.
    unsafe { WATCH.get(key) }.copied()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
