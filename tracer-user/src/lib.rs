//! seccomp-tracer: learns minimal seccomp profiles for containers by watching their syscalls
//! with eBPF. Data flows one way: engine -> kernel maps -> session
//! (`record`) -> profile -> sink.

pub mod baseline;
pub mod bpf;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod kernel;
pub mod output;
pub mod page;
pub mod privileges;
pub mod profile;
pub mod profiles;
pub mod record;
pub mod report;
pub mod shell;
pub mod syscalls;
pub mod target;

/// The kernel programs, built by build.rs from tracer-ebpf.
pub const EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
