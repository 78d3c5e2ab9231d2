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
    intrinsics::{atomic_or, AtomicOrdering},
    ptr::{addr_of_mut, read_volatile, write_volatile},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_task_btf,
        bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use tracer_common::{
    arg_call, arg_phase, counter, event_kind, is_refusal, watch_tag, AbiRecord, ArgKey, CgroupPath,
    CgroupRecord, Event, SyscallBits, BITMAP_WORDS, CGROUP_PATH_LEN, CLONE_NS_FLAGS, ENTERED_SLOTS,
    MAX_ARG_VALUES, MAX_PARENTS, MAX_SYSCALLS, MAX_TARGETS, MAX_WATCHES, RING_BYTES,
    UNSHARE_NS_FLAGS,
};

// Set by user space before loading (read-only data, so the verifier sees them as constants).
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

/// `BITMAP_WORDS - 1`, read through `global` (see `set_bit`).
#[no_mangle]
static WORD_MASK: usize = BITMAP_WORDS - 1;

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

/// A u32 of the current task at `offset` (from BTF).
#[inline(always)]
fn task_u32(offset: u64) -> u32 {
    // SAFETY: bpf_get_current_task_btf returns the current task, valid for the whole program;
    // the verifier checks the load against the task_struct layout, and such loads cannot fault.
    unsafe {
        let task = bpf_get_current_task_btf() as *const u8;
        read_volatile(task.add(offset as usize) as *const u32)
    }
}

/// Whether the current task runs under a seccomp filter (mode != SECCOMP_MODE_DISABLED).
#[inline(always)]
fn current_has_seccomp() -> bool {
    task_u32(global(&SECCOMP_MODE_OFFSET)) != 0
}

/// Whether the current syscall uses the 32-bit compat ABI (numbered in the i386 table).
#[inline(always)]
fn current_is_compat() -> bool {
    let mask = global(&COMPAT_MASK);
    mask != 0 && task_u32(global(&COMPAT_OFFSET)) & mask != 0
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

/// For the few calls Docker's default profile filters by argument, keeps the argument value
/// (see `arg_call`). Every other call costs a handful of compares.
#[inline(always)]
fn record_arg(record: *mut CgroupRecord, cgroup: u64, regs: *const u8, nr: u32, phase: u32) {
    let mut call = 0;
    while call < arg_call::COUNT {
        if global(&ARG_NRS[call]) == nr {
            break;
        }
        call += 1;
    }
    if call == arg_call::COUNT {
        return;
    }
    let overflow_bit = phase * 8 + call as u32;
    // SAFETY: bpf_probe_read_kernel tolerates any address; the offset comes from BTF.
    let arg0 = unsafe {
        bpf_probe_read_kernel(regs.wrapping_add(global(&REGS_ARG0_OFFSET) as usize) as *const u64)
    };
    let value = match (call, arg0) {
        (_, Err(_)) => return set_overflow(record, overflow_bit),
        (arg_call::CLONE, Ok(flags)) => flags & CLONE_NS_FLAGS,
        (arg_call::UNSHARE, Ok(flags)) => flags & UNSHARE_NS_FLAGS,
        // clone_args.flags is the struct's first field.
        // SAFETY: bpf_probe_read_user tolerates any address.
        (arg_call::CLONE3, Ok(ptr)) => match unsafe { bpf_probe_read_user(ptr as *const u64) } {
            Ok(flags) => flags & UNSHARE_NS_FLAGS,
            Err(_) => return set_overflow(record, overflow_bit),
        },
        (_, Ok(v)) => v,
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

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    // SAFETY: helper without preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    // Shortest path for everything that is not a target: one hash lookup.
    let Some(record) = TARGETS.get_ptr_mut(cgroup) else {
        return 0;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 == global(&TRACER_TGID) {
        return 0;
    }
    count(counter::SYSCALLS);
    // sys_enter(struct pt_regs *regs, long id)
    let nr: i64 = ctx.arg(1);
    if nr < 0 || nr >= MAX_SYSCALLS as i64 {
        count(counter::OUT_OF_RANGE);
        return 0;
    }
    let nr = nr as u32;
    let tid = pid_tgid as u32;
    if let Some(slot) = entered_slot(tid) {
        // SAFETY: array slot pointer from the map, valid and aligned.
        unsafe { write_volatile(slot, (tid as u64) << 32 | nr as u64) };
    }
    let filtered = current_has_seccomp();
    let compat = current_is_compat();
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
    } else {
        // SAFETY: as above.
        set_bit(unsafe { addr_of_mut!((*abi).setup) }, nr);
    }
    if !compat {
        let phase = if filtered {
            arg_phase::ALLOWED
        } else {
            arg_phase::SETUP
        };
        record_arg(record, cgroup, ctx.arg(0), nr, phase);
    }
    0
}

/// Does nothing: attached alone by the benchmark, it measures the floor, what any program on
/// sys_enter costs every syscall on the host.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn floor(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    // Cheapest first: only traced tasks write ENTERED slots, so for every other task this is
    // one inlined array lookup and a return value test, with no helper and no hash lookup.
    let tid = bpf_get_current_pid_tgid() as u32;
    let mut entered_nr: i64 = -1;
    if let Some(slot) = entered_slot(tid) {
        // SAFETY: array slot pointer from the map, valid and aligned.
        unsafe {
            let v = read_volatile(slot);
            if (v >> 32) as u32 == tid {
                entered_nr = (v & 0xffff_ffff) as i64;
                // Cleared, so a refused call right after an entered one of the same number
                // (clone, then clone with a namespace flag) is still seen as refused.
                write_volatile(slot, 0);
            }
        }
    }
    // sys_exit(struct pt_regs *regs, long ret)
    let ret: i64 = ctx.arg(1);
    // Only EPERM and ENOSYS can be refusals (see is_refusal).
    if ret != -1 && ret != -38 {
        return 0;
    }
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: bpf_probe_read_kernel tolerates any address; the offset comes from BTF.
    // The low 32 bits hold the number on both little-endian ABIs (x86_64 `orig_ax` is 64-bit,
    // arm64 `syscallno` is s32).
    let nr = unsafe {
        bpf_probe_read_kernel(regs.wrapping_add(global(&REGS_NR_OFFSET) as usize) as *const i32)
            .unwrap_or(-1)
    } as i64;
    if !is_refusal(ret, nr, entered_nr) {
        return 0;
    }
    // SAFETY: helper without preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    let Some(record) = TARGETS.get_ptr_mut(cgroup) else {
        return 0;
    };
    count(counter::REFUSALS);
    let nr = nr as u32;
    let compat = current_is_compat();
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
        record_arg(record, cgroup, regs, nr, arg_phase::REFUSED);
    }
    0
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
