//! Kernel side of seccomp-tracer: records, per traced cgroup, which syscalls ran (sys_enter),
//! which were refused by the current seccomp filter (sys_exit without sys_enter), and adopts
//! re-created cgroups of watched containers before any task can join them (cgroup_mkdir).
//!
//! Programs by hook: `syscalls` (sys_enter, sys_exit), `cgroups` (task and cgroup lifecycle,
//! cgroup_mkdir), `bench` (the benchmark's probes). What they share: `globals` (written by
//! user space before loading), `maps`, `state` (the per-CPU task record and what invalidates
//! it), `task` (reads of the current task through BTF) and `record` (what a target's record
//! gets: bits, argument values, events, counters).
#![no_std]
#![no_main]
// The BPF target's `core` has no atomic read-modify-write methods; the intrinsic lowers to
// BPF_ATOMIC | BPF_OR | BPF_FETCH.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod bench;
mod cgroups;
mod globals;
mod maps;
mod record;
mod state;
mod syscalls;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
