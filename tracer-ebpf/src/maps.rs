//! Every map of the kernel programs. User space opens and pins them by these names.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use tracer_common::{
    counter, ArgKey, CgroupPath, CgroupRecord, ENTERED_SLOTS, FILTER_WORDS, MAX_ARG_VALUES,
    MAX_PARENTS, MAX_TARGETS, MAX_WATCHES, RING_BYTES,
};

use crate::state::CpuState;

// The maps, by the names in `tracer_common::maps`. aya-ebpf takes a map's name from its
// static, so it is spelled here too; tracer-user/src/bpf/contract.rs checks that the maps of
// the object are exactly `maps::ALL`, which is what user space pins.

/// Bit `id % (FILTER_WORDS * 64)` is set for the cgroup id of every target: a clear bit
/// rules a cgroup out with one inlined array load, before any hash lookup. Set bits may be
/// shared or stale, so TARGETS stays the authority.
#[map]
pub(crate) static FILTER: Array<u64> = Array::with_max_entries(FILTER_WORDS, 0);

/// Generation of what the [`CpuState`]s describe: `[0]` is bumped by the kernel when a task
/// is created or changes cgroup, `[1]` by user space when it changes the targets.
#[map]
pub(crate) static GEN: Array<u64> = Array::with_max_entries(2, 0);

#[map]
pub(crate) static CPU: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

/// Calls of targets that may install a seccomp filter and have not returned yet. While there
/// are any, unfiltered targets read their filter mode on every call; when one returns, the
/// generation moves on, so every CPU reads the modes again.
#[map]
pub(crate) static INSTALLS: Array<u64> = Array::with_max_entries(1, 0);

/// Traced cgroups (by cgroup v2 id) and what they did. Presence in this map is the filter.
#[map]
pub(crate) static TARGETS: HashMap<u64, CgroupRecord> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Cgroup paths to adopt into TARGETS the moment they are created; value = user-space tag
/// (a target index, or a `watch_tag`).
#[map]
pub(crate) static WATCH: HashMap<CgroupPath, u32> = HashMap::with_max_entries(MAX_WATCHES, 0);

/// The syscall each task is inside (`tracer_common::entered`), by `entered_index(tid)`;
/// marked out of it at sys_exit (`returned`). Lets sys_exit tell a refused call from one
/// that ran and failed.
#[map]
pub(crate) static ENTERED: Array<u64> = Array::with_max_entries(ENTERED_SLOTS, 0);

/// Argument values seen for the `arg_call` calls, per traced cgroup (the value is unused).
#[map]
pub(crate) static ARGS: HashMap<ArgKey, u8> = HashMap::with_max_entries(MAX_ARG_VALUES, 0);

#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
pub(crate) static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Lengths and levels of the paths watched with `watch_tag::PARENT` (see
/// `tracer_common::parent_entry`; 0 = unused slot).
#[map]
pub(crate) static PARENT_LENS: Array<u32> = Array::with_max_entries(MAX_PARENTS, 0);

/// One all-zero record, the initial value of cgroups adopted in the kernel.
#[map]
pub(crate) static ZERO: Array<CgroupRecord> = Array::with_max_entries(1, 0);

/// Scratch space for a path key (too large for the 512-byte stack next to everything else).
#[map]
pub(crate) static SCRATCH: PerCpuArray<CgroupPath> = PerCpuArray::with_max_entries(1, 0);
