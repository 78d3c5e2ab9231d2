//! The contract between the kernel programs (`tracer-ebpf`) and user space (`tracer-user`):
//! the names of maps, globals and programs, the `#[repr(C)]` layout of map values and
//! ring-buffer events, and the bit and slot encodings both sides compute. Pure: no I/O.
#![cfg_attr(not(test), no_std)]

mod entered;

pub use entered::{entered, entered_index, returned, slot_state, SlotState};

/// Syscall numbers the bitmaps can hold. x86_64 and aarch64 stay below 512 today; the rest is room.
pub const MAX_SYSCALLS: u32 = 1024;
/// 64-bit words in one [`SyscallBits`].
pub const BITMAP_WORDS: usize = (MAX_SYSCALLS / 64) as usize;

/// Cgroups traced at once (live instances of all targets).
pub const MAX_TARGETS: u32 = 4096;
/// 64-bit words of the kernel's target filter bitmap (a power of two): 262,144 bits, 32 KiB.
pub const FILTER_WORDS: u32 = 4096;
/// Cgroups above a task's own that the kernel looks through for a target, so that a target's
/// descendants (systemd or a nested runtime inside a container, any delegation) are traced as
/// the target. A task nested deeper below its target than this is not traced.
pub const SUBTREE_LEVELS: u32 = 16;
/// Cgroup paths watched for (re)creation at once.
pub const MAX_WATCHES: u32 = 4096;
/// Length of a watched cgroup path, NUL padded. Longer paths are truncated on both sides alike.
pub const CGROUP_PATH_LEN: usize = 256;
/// Parent directories watched for new children at once (one per cgroup layout in use).
pub const MAX_PARENTS: u32 = 4;
/// Slots of the "task is inside a syscall that passed sys_enter" table, indexed by tid (see
/// [`entered_index`]). Four times the default `pid_max` (32768, or 1024 per CPU), so that
/// tids share a slot only where `pid_max` is raised (systemd sets 4,194,304); see
/// [`slot_state`] for what sharing costs.
pub const ENTERED_SLOTS: u32 = 1 << 17;
/// Ring buffer size in bytes (a power of two, a multiple of the page size).
pub const RING_BYTES: u32 = 1 << 18;

pub mod names;
pub use names::{globals, maps, programs};

/// Word index and bit of cgroup `id` in the `FILTER` bitmap. Ids equal modulo
/// `FILTER_WORDS * 64` share a bit: a set bit means "maybe a target", TARGETS decides.
#[inline(always)]
pub const fn filter_bit(id: u64) -> (u32, u64) {
    const _: () = assert!(FILTER_WORDS.is_power_of_two());
    (((id / 64) as u32) & (FILTER_WORDS - 1), 1u64 << (id % 64))
}

/// One bit per syscall number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallBits {
    pub words: [u64; BITMAP_WORDS],
}

impl SyscallBits {
    pub const EMPTY: Self = Self {
        words: [0; BITMAP_WORDS],
    };
}

/// What one ABI of a traced cgroup did.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AbiRecord {
    /// Calls made by tasks that run under a seccomp filter: what the profile must allow.
    pub allowed: SyscallBits,
    /// Calls made by tasks without a filter yet: the runtime setting the container up
    /// (mount, pivot_root, ...) before it installs the filter. Not part of a profile unless the
    /// target runs with no filter at all.
    pub setup: SyscallBits,
    /// Calls that returned -EPERM/-ENOSYS without passing sys_enter: refused by the current filter.
    pub refused: SyscallBits,
}

impl AbiRecord {
    pub const EMPTY: Self = Self {
        allowed: SyscallBits::EMPTY,
        setup: SyscallBits::EMPTY,
        refused: SyscallBits::EMPTY,
    };
}

/// What the kernel learned about one traced cgroup (value of the `TARGETS` map).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgroupRecord {
    /// Calls of the native ABI (x86_64, aarch64), numbered in its table.
    pub native: AbiRecord,
    /// Calls of the 32-bit compat ABI, numbered in its table: `int 0x80` on x86_64 (i386),
    /// AArch32 on arm64 (arm EABI).
    pub compat: AbiRecord,
    /// Bit `phase * 8 + call` (see [`arg_call`], [`arg_phase`]): an argument value of that call
    /// could not be kept (the `ARGS` map was full or unreadable), so its rule must not be narrowed.
    pub arg_overflow: u64,
}

impl CgroupRecord {
    pub const EMPTY: Self = Self {
        native: AbiRecord::EMPTY,
        compat: AbiRecord::EMPTY,
        arg_overflow: 0,
    };
}

/// Calls whose first argument is recorded, as Docker's default profile filters on it. The
/// index of each in the `ARG_NRS` kernel global (numbers differ by architecture).
pub mod arg_call {
    /// `personality(persona)`: the raw value.
    pub const PERSONALITY: usize = 0;
    /// `socket(family, ...)`: the raw family.
    pub const SOCKET: usize = 1;
    /// `clone(flags, ...)`: flags & `super::CLONE_NS_FLAGS`.
    pub const CLONE: usize = 2;
    /// `unshare(flags)`: flags & `super::UNSHARE_NS_FLAGS`.
    pub const UNSHARE: usize = 3;
    /// `clone3(&args, size)`: `args.flags` & `super::UNSHARE_NS_FLAGS`, read from user memory.
    pub const CLONE3: usize = 4;
    pub const COUNT: usize = 5;
}

/// Which bitmap a recorded argument value belongs to (the same split as [`AbiRecord`]).
pub mod arg_phase {
    pub const ALLOWED: u32 = 0;
    pub const SETUP: u32 = 1;
    pub const REFUSED: u32 = 2;
}

/// The namespace flags Docker's default profile refuses in `clone` (CLONE_NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET). CLONE_NEWTIME (0x80) shares its bit with the exit
/// signal in `clone`, so it is only in the unshare/clone3 mask.
pub const CLONE_NS_FLAGS: u64 = 0x7e02_0000;
pub const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | 0x80;

/// Distinct (cgroup, call, phase, value) tuples kept at once.
pub const MAX_ARG_VALUES: u32 = 16384;

/// Key of the `ARGS` map: one argument value seen for one call in one traced cgroup.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgKey {
    pub cgroup_id: u64,
    /// An [`arg_call`] index.
    pub call: u32,
    /// An [`arg_phase`].
    pub phase: u32,
    pub value: u64,
}

/// Kinds of [`Event`].
pub mod event_kind {
    /// A task under a seccomp filter made `value` for the first time in this cgroup.
    pub const SEEN: u32 = 0;
    /// Syscall `value` was refused by the current filter for the first time in this cgroup.
    pub const REFUSED: u32 = 1;
    /// A watched cgroup path was created; `cgroup_id` is the new cgroup, `value` the watch tag.
    pub const ADOPTED: u32 = 2;
    /// Like SEEN and REFUSED, for a call of the 32-bit compat ABI (i386 numbering).
    pub const SEEN_COMPAT: u32 = 3;
    pub const REFUSED_COMPAT: u32 = 4;
    /// A task without a seccomp filter yet (the runtime setting the container up, or a target
    /// that runs unconfined) made `value` for the first time in this cgroup: provenance only.
    pub const SETUP: u32 = 5;
    pub const SETUP_COMPAT: u32 = 6;
}

/// Values of the `WATCH` map with a meaning of their own (others are target indexes).
pub mod watch_tag {
    /// A parent directory: any cgroup created directly under it is adopted provisionally,
    /// until user space knows whether it belongs to a target.
    pub const PARENT: u32 = u32::MAX - 1;
    /// The runtime-baseline throwaway container.
    pub const BASELINE: u32 = u32::MAX;
}

/// Length of a task's `comm` (TASK_COMM_LEN), NUL padded.
pub const COMM_LEN: usize = 16;

/// A first sighting, sent through the ring buffer for live display and provenance only (which
/// program made a call first, and when): the maps stay the authoritative record, so a dropped
/// event loses nothing from the profile.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub kind: u32,
    pub value: u32,
    /// The thread group (process) id of the task, as the initial pid namespace numbers it.
    pub tgid: u32,
    /// Zero: keeps the layout free of implicit padding.
    pub pad: u32,
    /// The task's `comm`, NUL padded: what the task says its name is (attacker-controlled).
    pub comm: [u8; COMM_LEN],
}

/// Index of each per-CPU counter in the `COUNTERS` map.
pub mod counter {
    /// Syscalls entered by traced tasks.
    pub const SYSCALLS: u32 = 0;
    /// Events that did not fit in the ring buffer.
    pub const RING_DROPS: u32 = 1;
    /// Syscall numbers at or above `MAX_SYSCALLS` (x32 ABI and the like): seen but not recordable.
    pub const OUT_OF_RANGE: u32 = 2;
    /// Refused calls seen (every occurrence, not only first ones).
    pub const REFUSALS: u32 = 3;
    pub const COUNT: u32 = 4;
}

/// A cgroup path relative to the cgroup2 root (`/docker/<id>`), NUL padded: the key of `WATCH`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupPath {
    pub bytes: [u8; CGROUP_PATH_LEN],
}

impl CgroupPath {
    /// Builds the key the kernel will compare against; `None` if the path is empty.
    pub fn new(path: &[u8]) -> Option<Self> {
        if path.is_empty() {
            return None;
        }
        let mut bytes = [0u8; CGROUP_PATH_LEN];
        // Keep the last byte NUL, as bpf_probe_read_kernel_str does.
        let n = path.len().min(CGROUP_PATH_LEN - 1);
        bytes[..n].copy_from_slice(&path[..n]);
        Some(Self { bytes })
    }
}

/// The `PARENT_LENS` value of a parent directory watched with `watch_tag::PARENT` (a path
/// relative to the cgroup2 root, `/docker`): its length, and its level (its number of
/// components, as the kernel counts a cgroup's depth). The kernel adopts a new cgroup only
/// one level below it, a container's, and not a container's own descendants (`/docker/<id>/sub`),
/// which are traced as the container they are in. 0 for an empty path (an unused slot).
pub fn parent_entry(path: &[u8]) -> u32 {
    let level = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as u32;
    (level << 16) | (path.len() as u32 & 0xffff)
}

/// The length and level of a `PARENT_LENS` value (see [`parent_entry`]).
#[inline(always)]
pub fn parse_parent_entry(v: u32) -> (usize, u32) {
    ((v & 0xffff) as usize, v >> 16)
}

/// Bit of the `COMPAT_MASK` global: the word that tells a compat call is in the call's
/// `pt_regs` (arm64: `pstate`, whose M[4] bit says the task trapped from AArch32, an
/// architectural bit) rather than in `task_struct` (x86_64: `thread_info.status`, TS_COMPAT).
/// The other bits are the bit to test.
pub const COMPAT_IN_REGS: u32 = 1 << 31;

/// The `prctl` option that installs a seccomp filter.
pub const PR_SET_SECCOMP: u64 = 22;

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

/// Whether a syscall that returned `ret` was refused by the task's seccomp filter.
///
/// seccomp runs before the sys_enter tracepoint, so a call it refuses reaches sys_exit without
/// ever passing sys_enter; `entered_nr` is the call the task last entered (-1 if none). A call
/// that did run and failed on its own (epoll_ctl on a regular file gives EPERM) is not a
/// refusal. Only EPERM (Docker's default errno) and ENOSYS (its answer to clone3) count.
#[inline(always)]
pub fn is_refusal(ret: i64, nr: i64, entered_nr: i64) -> bool {
    (ret == -EPERM || ret == -ENOSYS) && nr >= 0 && nr < MAX_SYSCALLS as i64 && nr != entered_nr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_classification() {
        // mbind under Docker's default: EPERM, never entered.
        assert!(is_refusal(-1, 237, -1));
        // clone3 under Docker's default: ENOSYS, never entered (the slot holds another call).
        assert!(is_refusal(-38, 435, 0));
        // epoll_ctl on a regular file: entered, then EPERM from the kernel itself.
        assert!(!is_refusal(-1, 233, 233));
        // Other errors and successes are never refusals.
        assert!(!is_refusal(-13, 2, -1));
        assert!(!is_refusal(0, 2, -1));
        // Numbers we cannot record.
        assert!(!is_refusal(-1, -1, -1));
        assert!(!is_refusal(-1, MAX_SYSCALLS as i64, -1));
    }

    #[test]
    fn filter_bits() {
        assert_eq!(filter_bit(0), (0, 1));
        assert_eq!(filter_bit(63), (0, 1 << 63));
        assert_eq!(filter_bit(64), (1, 1));
        assert_eq!(filter_bit(64 * 5 + 7), (5, 1 << 7));
        // The last word, then around: ids one bitmap apart share their bit.
        let span = FILTER_WORDS as u64 * 64;
        assert_eq!(filter_bit(span - 1), (FILTER_WORDS - 1, 1 << 63));
        assert_eq!(filter_bit(span + 64 * 5 + 7), filter_bit(64 * 5 + 7));
        assert_eq!(filter_bit(u64::MAX), (FILTER_WORDS - 1, 1 << 63));
    }

    #[test]
    fn contract_names_are_distinct() {
        fn distinct(names: &[&str]) -> bool {
            names
                .iter()
                .enumerate()
                .all(|(i, n)| !names[..i].contains(n))
        }
        assert!(distinct(&maps::ALL));
        assert!(distinct(&globals::ALL));
        assert!(distinct(&programs::ALL));
    }

    #[test]
    fn parent_entries_hold_length_and_level() {
        assert_eq!(parse_parent_entry(parent_entry(b"/docker")), (7, 1));
        assert_eq!(parse_parent_entry(parent_entry(b"/system.slice")), (13, 1));
        assert_eq!(
            parse_parent_entry(parent_entry(b"/kubepods/burstable")),
            (19, 2)
        );
        // Trailing or doubled slashes are no components.
        assert_eq!(parse_parent_entry(parent_entry(b"/a//b/")), (6, 2));
        // An unused slot.
        assert_eq!(parse_parent_entry(0), (0, 0));
        assert_eq!(parent_entry(b""), 0);
    }

    #[test]
    fn events_have_no_implicit_padding() {
        // Both sides read the ring buffer's bytes as this struct (aya::Pod needs no padding).
        assert_eq!(
            core::mem::size_of::<Event>(),
            8 + 8 + 4 + 4 + 4 + 4 + COMM_LEN
        );
        assert_eq!(core::mem::offset_of!(Event, comm), 32);
    }

    #[test]
    fn watch_keys_are_nul_padded_and_truncated() {
        let k = CgroupPath::new(b"/docker/abc").unwrap();
        assert_eq!(&k.bytes[..11], b"/docker/abc");
        assert!(k.bytes[11..].iter().all(|&b| b == 0));
        let long = [b'a'; 400];
        let k = CgroupPath::new(&long).unwrap();
        assert_eq!(k.bytes[CGROUP_PATH_LEN - 1], 0);
        assert!(CgroupPath::new(b"").is_none());
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] structs of integers with no padding and no invalid
    // bit patterns, which is what aya::Pod requires.
    unsafe impl aya::Pod for super::SyscallBits {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CgroupRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::AbiRecord {}
    // SAFETY: as above (two u64, two u32, one u64: no padding).
    unsafe impl aya::Pod for super::ArgKey {}
    // SAFETY: as above (u64, u64, four u32, a byte array: no padding; see the layout test).
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: as above (a byte array).
    unsafe impl aya::Pod for super::CgroupPath {}
}
