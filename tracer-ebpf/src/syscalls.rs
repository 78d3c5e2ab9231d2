//! The syscall programs: sys_enter records the calls targets make, sys_exit the calls their
//! seccomp filter refused.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{
    arg_call, arg_phase, counter, entered, event_kind, is_refusal, returned, slot_state, AbiRecord,
    SlotState, MAX_SYSCALLS,
};

use crate::{
    globals::{global, REGS_NR_OFFSET},
    maps::TARGETS,
    record::{arg_call_of, count, emit, record_arg, set_bit, test_bit},
    state::{begin_install, end_install, entered_slot, installing, target_state},
    task::{current_task, has_seccomp, is_compat, is_install, load},
};

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
            // Without sys_exit nothing marks the task out of its call: an install mark of this
            // task's is its previous call, which has returned.
            if let SlotState::Inside { install: true, .. } = slot_state(read_volatile(slot), tid) {
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
        if set_bit(unsafe { addr_of_mut!((*abi).setup) }, nr) {
            let kind = if compat {
                event_kind::SETUP_COMPAT
            } else {
                event_kind::SETUP
            };
            emit(cgroup, kind, nr);
        }
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
    let mut state = SlotState::Outside;
    if let Some(slot) = entered_slot(tid) {
        // SAFETY: array slot pointer from the map, valid and aligned.
        unsafe {
            state = slot_state(read_volatile(slot), tid);
            if let SlotState::Inside { install, .. } = state {
                // Out of the call, so a refused call right after an entered one of the same
                // number (clone, then clone with a namespace flag) is still seen as refused.
                write_volatile(slot, returned(tid));
                if install {
                    end_install();
                }
            }
        }
    }
    let entered_nr = match state {
        SlotState::Inside { nr, .. } => nr as i64,
        SlotState::Outside => -1,
        // Another task sharing the slot wrote it last (see `SlotState::Unknown`).
        SlotState::Unknown => return 0,
    };
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
