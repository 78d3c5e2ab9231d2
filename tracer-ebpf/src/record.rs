//! What a traced cgroup's record gets: syscall bits, argument values, counters and
//! first-sighting events.

use core::{
    intrinsics::{atomic_or, AtomicOrdering},
    ptr::{addr_of_mut, read_volatile},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user, generated},
};
use tracer_common::{
    arg_call, counter, ArgKey, CgroupRecord, Event, SyscallBits, BITMAP_WORDS, CLONE_NS_FLAGS,
    COMM_LEN, UNSHARE_NS_FLAGS,
};

use crate::{
    globals::{global, ARG_NRS, REGS_ARG0_OFFSET, WORD_MASK},
    maps::{ARGS, COUNTERS, EVENTS},
    task::load,
};

#[inline(always)]
pub(crate) fn count(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, valid for the duration of the program; no other writer on this CPU.
        unsafe { *c += 1 };
    }
}

/// Sends a first sighting with the current task's process id and name. Only first sightings
/// (and adoptions) come here: the helpers it calls are never on the path of a known call.
#[inline(always)]
pub(crate) fn emit(cgroup_id: u64, kind: u32, value: u32) {
    match EVENTS.reserve::<Event>(0) {
        Some(mut entry) => {
            let e = entry.as_mut_ptr();
            // SAFETY: `e` is the reserved entry, writable and aligned for an Event; `origin`
            // writes the other fields before it is submitted.
            unsafe {
                addr_of_mut!((*e).ts_ns).write(bpf_ktime_get_ns());
                addr_of_mut!((*e).cgroup_id).write(cgroup_id);
                addr_of_mut!((*e).kind).write(kind);
                addr_of_mut!((*e).value).write(value);
                origin(e);
            }
            entry.submit(0);
        }
        None => count(counter::RING_DROPS),
    }
}

/// Fills in who made the call: the task's process id and name. Not inlined (a BPF-to-BPF
/// call), so that the programs that emit keep the register allocation of their hot paths.
///
/// # Safety
/// `e` points to a writable, aligned Event.
#[inline(never)]
unsafe fn origin(e: *mut Event) {
    // SAFETY: the caller's guarantee; the helper writes COMM_LEN bytes, padded with NULs (or
    // zeroes on failure: an empty name, shown as `?`).
    unsafe {
        addr_of_mut!((*e).tgid).write((bpf_get_current_pid_tgid() >> 32) as u32);
        addr_of_mut!((*e).pad).write(0);
        generated::bpf_get_current_comm(addr_of_mut!((*e).comm).cast(), COMM_LEN as u32);
    }
}

/// Whether bit `nr` (< MAX_SYSCALLS) is set.
#[inline(always)]
pub(crate) fn test_bit(bits: &SyscallBits, nr: u32) -> bool {
    let word = (nr / 64) as usize & global(&WORD_MASK);
    // SAFETY: `word` is masked into bounds (see `set_bit` for why not by indexing).
    unsafe { *bits.words.as_ptr().add(word) & (1u64 << (nr % 64)) != 0 }
}

/// Sets bit `nr`; true if it was not set before (a first sighting).
#[inline(always)]
pub(crate) fn set_bit(bits: *mut SyscallBits, nr: u32) -> bool {
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

#[inline(always)]
pub(crate) fn set_overflow(record: *mut CgroupRecord, bit: u32) {
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
pub(crate) fn arg_call_of(nr: u32) -> usize {
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
pub(crate) fn record_arg(
    record: *mut CgroupRecord,
    cgroup: u64,
    regs: *const u8,
    call: usize,
    phase: u32,
) {
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
