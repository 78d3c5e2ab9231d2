//! Benchmark probes: programs attached alone by `seccomp-tracer floor` to measure what pieces
//! of the filter cost (see BENCHMARKS.md); never attached while recording.

use aya_ebpf::{
    helpers::bpf_get_current_cgroup_id, macros::raw_tracepoint, programs::RawTracePointContext,
};

use crate::maps::TARGETS;

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
