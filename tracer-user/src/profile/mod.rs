//! Pure: from what the kernel recorded for a target to the syscalls a profile allows, and the
//! documents for each platform. Nothing here does I/O.

pub mod advice;
pub mod formats;
mod set;

use std::collections::BTreeSet;

pub use set::SyscallSet;

use crate::syscalls::Arch;

/// Everything learned about one target (all its instances merged).
#[derive(Clone, Debug, Default)]
pub struct Learned {
    /// Calls made under a seccomp filter.
    pub allowed: SyscallSet,
    /// Calls made by tasks without a filter (runtime set-up, or an unconfined target).
    pub setup: SyscallSet,
    /// Calls the current filter refused.
    pub refused: SyscallSet,
}

impl Learned {
    pub fn merge(&mut self, other: &Learned) {
        self.allowed.extend(&other.allowed);
        self.setup.extend(&other.setup);
        self.refused.extend(&other.refused);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ComposeOptions {
    pub include_refused: bool,
    /// Count calls made without a seccomp filter too. For `run`, where no container runtime
    /// sets up the process, those are the program's own (before it installs a filter itself).
    pub include_setup: bool,
}

/// The allowed set of a profile, and where each part came from (for the summary).
#[derive(Clone, Debug, Default)]
pub struct Composition {
    pub allowed: BTreeSet<&'static str>,
    /// Added only because the runtime makes them after installing the filter.
    pub from_baseline: BTreeSet<&'static str>,
    /// Refused during recording and allowed here (empty with `include_refused: false`).
    pub refused_included: BTreeSet<&'static str>,
    /// Numbers no table names: they cannot be written into a profile by name.
    pub unnamed: Vec<u32>,
    /// The target ran without any seccomp filter, so set-up calls could not be told apart.
    pub unconfined: bool,
}

/// Which syscalls the profile allows. `baseline` is the runtime's own post-filter calls
/// (empty when disabled).
pub fn compose(
    arch: Arch,
    learned: &Learned,
    baseline: &SyscallSet,
    opts: ComposeOptions,
) -> Composition {
    let unconfined = learned.allowed.is_empty() && !learned.setup.is_empty();
    let mut numbers = learned.allowed.clone();
    if unconfined || opts.include_setup {
        numbers.extend(&learned.setup);
    }
    let learned_only = numbers.clone();
    numbers.extend(baseline);
    if opts.include_refused {
        numbers.extend(&learned.refused);
    }
    let (allowed, unnamed) = numbers.names(arch);
    let name = |nr| arch.name(nr);
    let from_baseline = baseline
        .iter()
        .filter(|&nr| !learned_only.contains(nr))
        .filter_map(name)
        .collect();
    let refused_included = if opts.include_refused {
        learned.refused.iter().filter_map(name).collect()
    } else {
        BTreeSet::new()
    };
    Composition {
        allowed,
        from_baseline,
        refused_included,
        unnamed,
        unconfined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> SyscallSet {
        names
            .iter()
            .map(|n| Arch::X86_64.number(n).unwrap())
            .collect()
    }

    #[test]
    fn setup_calls_stay_out_when_the_target_is_filtered() {
        let learned = Learned {
            allowed: set(&["read", "write"]),
            setup: set(&["mount", "pivot_root"]),
            refused: set(&["mbind"]),
        };
        let c = compose(
            Arch::X86_64,
            &learned,
            &set(&["setgroups", "read"]),
            ComposeOptions {
                include_refused: true,
                include_setup: false,
            },
        );
        assert_eq!(
            c.allowed.iter().copied().collect::<Vec<_>>(),
            ["mbind", "read", "setgroups", "write"]
        );
        assert_eq!(
            c.from_baseline.iter().copied().collect::<Vec<_>>(),
            ["setgroups"]
        );
        assert!(!c.unconfined);
        let c = compose(
            Arch::X86_64,
            &learned,
            &SyscallSet::default(),
            ComposeOptions {
                include_refused: false,
                include_setup: false,
            },
        );
        assert!(!c.allowed.contains("mbind"));
    }

    #[test]
    fn run_counts_calls_made_before_the_programs_own_filter() {
        let learned = Learned {
            allowed: set(&["read"]),
            setup: set(&["mount"]),
            ..Default::default()
        };
        let opts = ComposeOptions {
            include_refused: true,
            include_setup: true,
        };
        let c = compose(Arch::X86_64, &learned, &SyscallSet::default(), opts);
        assert!(c.allowed.contains("mount") && c.allowed.contains("read"));
    }

    #[test]
    fn unconfined_target_uses_setup_calls() {
        let learned = Learned {
            setup: set(&["read", "mount"]),
            ..Default::default()
        };
        let c = compose(
            Arch::X86_64,
            &learned,
            &SyscallSet::default(),
            ComposeOptions {
                include_refused: true,
                include_setup: false,
            },
        );
        assert!(c.unconfined);
        assert!(c.allowed.contains("mount"));
    }
}
