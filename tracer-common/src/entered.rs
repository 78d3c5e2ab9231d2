//! The ENTERED slot encoding: which call each task is inside, so that sys_exit can tell a
//! call its seccomp filter refused (it never passed sys_enter) from one that ran and failed.
//! Pure: nothing here does I/O.

use crate::ENTERED_SLOTS;

/// Bit of an ENTERED slot value: its task is inside the call (passed sys_enter, not yet
/// sys_exit).
const ENTERED_IN_CALL: u64 = 1 << 30;
/// Bit of an ENTERED slot value marking a call that may install a seccomp filter.
const ENTERED_INSTALL: u64 = 1 << 31;

/// The ENTERED slot of task `tid`. Tasks whose tids are `ENTERED_SLOTS` apart share it.
#[inline(always)]
pub fn entered_index(tid: u32) -> u32 {
    tid % ENTERED_SLOTS
}

/// The ENTERED slot value for task `tid` inside call `nr` (< MAX_SYSCALLS); `install` marks
/// `seccomp(2)` and `prctl(PR_SET_SECCOMP)`, after which the tasks' filter modes are read again.
#[inline(always)]
pub fn entered(tid: u32, nr: u32, install: bool) -> u64 {
    (tid as u64) << 32 | ENTERED_IN_CALL | nr as u64 | if install { ENTERED_INSTALL } else { 0 }
}

/// The ENTERED slot value once task `tid`'s call returned: still `tid`'s, in no call. The owner
/// stays, so that a task sharing the slot can tell that it no longer holds its own entry.
#[inline(always)]
pub fn returned(tid: u32) -> u64 {
    (tid as u64) << 32
}

/// What an ENTERED slot value says of one task (see [`slot_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// The task is inside call `nr`, which passed sys_enter; `install` as in [`entered`].
    Inside { nr: u32, install: bool },
    /// The task is in no call that passed sys_enter: one returning now was refused.
    Outside,
    /// Another task sharing the slot wrote it last, perhaps over this task's entry: nothing
    /// is known of this task, so no refusal may be told (rather than a call that ran taken
    /// for one). Only where tids share slots; a refusal missed so is seen again the next time
    /// the task makes that call after one of its own has passed sys_enter.
    Unknown,
}

/// What ENTERED slot value `v` says of task `tid`. Tid 0 is the idle task, which makes no
/// syscalls, so a slot still 0 is nobody's.
#[inline(always)]
pub fn slot_state(v: u64, tid: u32) -> SlotState {
    let owner = (v >> 32) as u32;
    if owner != tid {
        return if v == 0 {
            SlotState::Outside
        } else {
            SlotState::Unknown
        };
    }
    if v & ENTERED_IN_CALL == 0 {
        return SlotState::Outside;
    }
    SlotState::Inside {
        nr: (v & (ENTERED_IN_CALL - 1)) as u32,
        install: v & ENTERED_INSTALL != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{is_refusal, MAX_SYSCALLS};

    #[test]
    fn entered_slots_round_trip() {
        for (tid, nr, install) in [
            (1, 0, false),
            (u32::MAX, MAX_SYSCALLS - 1, true),
            (7, 317, true),
        ] {
            assert_eq!(
                slot_state(entered(tid, nr, install), tid),
                SlotState::Inside { nr, install }
            );
            assert_eq!(slot_state(returned(tid), tid), SlotState::Outside);
        }
        // A slot never written is nobody's.
        assert_eq!(slot_state(0, 42), SlotState::Outside);
    }

    /// One ENTERED slot and the kernel programs' use of it: sys_enter writes the entry,
    /// sys_exit reads it (is the returning call a refusal?) and marks the task out of it.
    struct Slot(u64);

    impl Slot {
        fn enter(&mut self, tid: u32, nr: u32) {
            self.0 = entered(tid, nr, false);
        }

        /// Whether `tid`'s call `nr`, returning -EPERM now, is taken for a refusal.
        fn exit_eperm(&mut self, tid: u32, nr: u32) -> bool {
            match slot_state(self.0, tid) {
                SlotState::Inside { nr: entered, .. } => {
                    self.0 = returned(tid);
                    is_refusal(-1, nr as i64, entered as i64)
                }
                SlotState::Outside => is_refusal(-1, nr as i64, -1),
                SlotState::Unknown => false,
            }
        }
    }

    #[test]
    fn tasks_sharing_a_slot_never_take_a_call_that_ran_for_a_refusal() {
        // Two traced threads whose tids share a slot (pid_max above ENTERED_SLOTS).
        let (a, b) = (1000, 1000 + ENTERED_SLOTS);
        assert_eq!(entered_index(a), entered_index(b));
        let (futex, getpid, mbind) = (202, 39, 237);
        let mut slot = Slot(0);
        // A blocks in futex, B makes a call meanwhile, then A's futex returns EPERM (it ran:
        // it passed sys_enter). The slot holds B's stamp: A's state is unknown, not a refusal.
        slot.enter(a, futex);
        slot.enter(b, getpid);
        assert!(!slot.exit_eperm(b, getpid));
        assert!(!slot.exit_eperm(a, futex));
        // Once A's own call has passed sys_enter again, its refusals are told again.
        slot.enter(a, getpid);
        assert!(!slot.exit_eperm(a, getpid));
        assert!(slot.exit_eperm(a, mbind));
        // As B's, in a slot A wrote last, are not (a refusal missed, never one invented).
        assert!(!slot.exit_eperm(b, mbind));
    }

    #[test]
    fn a_task_alone_in_its_slot_has_every_refusal_told() {
        let mut slot = Slot(0);
        let (clone, mbind) = (56, 237);
        // A refused first call, in a slot never written.
        assert!(slot.exit_eperm(7, mbind));
        // A call that ran and failed by itself, then a refused call of the same number right
        // after it (clone, then clone with a namespace flag).
        slot.enter(7, clone);
        assert!(!slot.exit_eperm(7, clone));
        assert!(slot.exit_eperm(7, clone));
        // Task 9 dies inside `exit`, which never returns: its entry stays. A new task given
        // tid 9 takes the entry for its own, and its refused call differs from `exit`.
        slot.enter(9, 60);
        assert!(slot.exit_eperm(9, mbind));
    }
}
