//! Cgroup and task lifecycle: generation bumps on task creation and cgroup moves, and the
//! adoption of watched cgroups the moment they are created (cgroup_mkdir).

use core::intrinsics::{atomic_or, AtomicOrdering};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext,
};
use tracer_common::{
    event_kind, filter_bit, parse_parent_entry, watch_tag, CgroupPath, CGROUP_PATH_LEN, MAX_PARENTS,
};

use crate::{
    globals::{global, MKDIR_ID_OFFSET, MKDIR_LEVEL_OFFSET, MKDIR_PATH_OFFSET, MKDIR_ROOT_OFFSET},
    maps::{FILTER, PARENT_LENS, SCRATCH, TARGETS, WATCH, ZERO},
    record::emit,
    state::bump_generation,
};

/// A task was created (possibly on the kernel stack of one that exited, which would make a
/// [`CpuState`](crate::state::CpuState) look valid for it): every CPU looks its task up again.
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

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    let _ = try_cgroup_mkdir(&ctx);
    0
}

#[inline(always)]
pub(crate) fn try_cgroup_mkdir(ctx: &TracePointContext) -> Result<(), i64> {
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
        None => match watched_parent(ctx, src) {
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

/// Whether the new cgroup at `src` lies directly under a parent watched with
/// `watch_tag::PARENT` (one level below it: a container's cgroup, not one of its own
/// descendants, which are traced as the container). Parents are few and their lengths known
/// (PARENT_LENS), so each check is one bounded read of that prefix into a zeroed key: no loop
/// over the bytes, which the verifier could not afford.
#[inline(always)]
pub(crate) fn watched_parent(ctx: &TracePointContext, src: *const u8) -> Option<u32> {
    // SAFETY: the offset comes from this tracepoint's format file; read_at probes the record.
    let level: i32 = unsafe { ctx.read_at(global(&MKDIR_LEVEL_OFFSET) as usize) }.ok()?;
    let key = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let key = unsafe { &mut *key };
    let mut k = 0;
    while k < MAX_PARENTS {
        let (len, parent_level) = parse_parent_entry(PARENT_LENS.get(k).copied().unwrap_or(0));
        k += 1;
        if len == 0 || len >= CGROUP_PATH_LEN - 1 || level as u32 != parent_level + 1 {
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
pub(crate) fn watched(key: &CgroupPath) -> Option<u32> {
    // By reference: a copy of the 256-byte key would not fit next to it on the BPF stack.
    #[allow(clippy::needless_borrows_for_generic_args)]
    // SAFETY: the value is only read.
    unsafe { WATCH.get(key) }.copied()
}
