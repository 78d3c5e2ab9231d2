//! The only module that talks to the kernel's BPF interface, by job: `layout` finds the
//! kernel's offsets and writes them into the programs, `links` attaches and pins the
//! programs, `maps` is the API over what they record. Names shared with the kernel programs
//! come from `tracer_common` (`maps`, `globals`, `programs`); `contract` tests them against
//! the built object.

pub mod btf;
#[cfg(test)]
mod contract;
mod layout;
mod links;
mod maps;

use thiserror::Error;

pub use layout::{format_offsets, KernelLayout};
pub use links::{attach_floor, pin_dir, BENCH_PROGRAMS};
pub use maps::{Counters, EventReader, Tracer, TEST_MAX_CGROUPS, TEST_RING_BYTES};

#[derive(Debug, Error)]
pub enum BpfError {
    #[error(
        "the kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error("reading the kernel's BTF: {0}")]
    Btf(#[from] btf::BtfError),
    #[error("tracefs is not mounted and could not be mounted at /sys/kernel/tracing: {0}")]
    Tracefs(String),
    #[error("the cgroup:cgroup_mkdir tracepoint format is not as expected: {0}")]
    MkdirFormat(String),
    #[error("this architecture ({0}) is not supported")]
    Arch(&'static str),
    #[error("loading the eBPF programs failed (is this kernel built with BPF and raw tracepoints?): {0}")]
    Load(String),
    #[error("attaching {program} failed: {detail}")]
    Attach {
        program: &'static str,
        detail: String,
    },
    /// A test-only knob (see `TEST_RING_BYTES`) set to a size the kernel would refuse.
    #[error("test knob {0}")]
    TestKnob(String),
    #[error("BPF map `{map}`: {detail}")]
    Map { map: &'static str, detail: String },
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |e| BpfError::Map {
        map,
        detail: e.to_string(),
    }
}
