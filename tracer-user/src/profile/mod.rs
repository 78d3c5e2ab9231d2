//! Pure: from what the kernel recorded for a target to the syscalls a profile allows, and the
//! documents for each platform. Nothing here does I/O.

pub mod args;
pub mod docs;
pub mod formats;
pub mod heal;
pub mod moby;
mod set;
pub mod why;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
pub use set::SyscallSet;
use tracer_common::{arg_call, arg_phase, AbiRecord, ArgKey, CgroupRecord};

use crate::syscalls::Arch;
use args::{arg_call_of, condition, ArgValues, Condition, Seen};

/// What one ABI of a target did, split as the kernel records it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Calls {
    /// Calls made under a seccomp filter.
    pub allowed: SyscallSet,
    /// Calls made by tasks without a filter (runtime set-up, or an unconfined target).
    pub setup: SyscallSet,
    /// Calls the current filter refused.
    pub refused: SyscallSet,
}

impl Calls {
    fn from_record(r: &AbiRecord) -> Self {
        Self {
            allowed: SyscallSet::from_bits(&r.allowed),
            setup: SyscallSet::from_bits(&r.setup),
            refused: SyscallSet::from_bits(&r.refused),
        }
    }

    pub fn merge(&mut self, other: &Calls) {
        self.allowed.extend(&other.allowed);
        self.setup.extend(&other.setup);
        self.refused.extend(&other.refused);
    }
}

/// Everything learned about one target (all its instances merged).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Learned {
    /// The native ABI (x86_64, aarch64).
    pub native: Calls,
    /// The 32-bit compat ABI, numbered in `Arch::compat`'s table.
    pub compat: Calls,
    /// First-argument values of the native `args::ARG_CALLS`.
    pub args: ArgValues,
}

impl Learned {
    /// From a kernel record and the `ARGS` keys of the same cgroup.
    pub fn from_kernel(r: &CgroupRecord, keys: impl IntoIterator<Item = ArgKey>) -> Self {
        Self {
            native: Calls::from_record(&r.native),
            compat: Calls::from_record(&r.compat),
            args: ArgValues::from_kernel(keys, r.arg_overflow),
        }
    }

    pub fn merge(&mut self, other: &Learned) {
        self.native.merge(&other.native);
        self.compat.merge(&other.compat);
        self.args.merge(&other.args);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ComposeOptions {
    pub include_refused: bool,
    /// Count calls made without a seccomp filter too. For `run`, where no container runtime
    /// sets up the process, those are the program's own (before it installs a filter itself).
    pub include_setup: bool,
    /// Narrow the calls Docker's default filters by argument to the values seen (`--no-args`
    /// turns this off).
    pub args: bool,
}

/// The allowed set of a profile, and where each part came from (for the summary).
#[derive(Clone, Debug, Default)]
pub struct Composition {
    pub allowed: BTreeSet<&'static str>,
    /// Of `allowed`, the calls allowed only with these argument values (any one of them).
    pub conditions: BTreeMap<&'static str, BTreeSet<Condition>>,
    /// Added only because the runtime makes them after installing the filter.
    pub from_baseline: BTreeSet<&'static str>,
    /// Refused during recording and allowed here (empty with `include_refused: false`).
    pub refused_included: BTreeSet<&'static str>,
    /// Native numbers no table names: they cannot be written into a profile by name.
    pub unnamed: Vec<u32>,
    /// Compat (32-bit) numbers that could not be named (no compat table for this arch).
    pub unnamed_compat: Vec<u32>,
    /// Of `allowed`, the names that come from 32-bit compat calls.
    pub compat: BTreeSet<&'static str>,
    /// clone3 was seen and is answered ENOSYS instead, so libc falls back to clone, whose
    /// namespace flags seccomp can check (clone3 passes them in memory, out of its reach).
    pub clone3_to_clone: bool,
    /// The target ran without any seccomp filter, so set-up calls could not be told apart.
    pub unconfined: bool,
}

/// Per call name: allowed with any argument, or only with these values of its first one.
#[derive(Default)]
struct Acc(BTreeMap<&'static str, Option<(usize, BTreeSet<u64>)>>);

impl Acc {
    fn any(&mut self, name: &'static str) {
        self.0.insert(name, None);
    }

    fn values(&mut self, name: &'static str, call: usize, values: &BTreeSet<u64>) {
        // An unconditional entry (None) stays unconditional.
        if let Some((_, v)) = self
            .0
            .entry(name)
            .or_insert_with(|| Some((call, BTreeSet::new())))
        {
            v.extend(values);
        }
    }
}

/// Which syscalls the profile allows, and with which argument values. `baseline` is the
/// runtime's own post-filter calls (empty when disabled).
pub fn compose(
    arch: Arch,
    learned: &Learned,
    baseline: &Learned,
    opts: ComposeOptions,
) -> Composition {
    let n = &learned.native;
    let unconfined = n.allowed.is_empty() && !n.setup.is_empty();
    let with_setup = unconfined || opts.include_setup;
    let mut c = Composition {
        unconfined,
        ..Default::default()
    };
    let mut acc = Acc::default();
    // (calls, phase, argument values) of every source that goes into the profile.
    let mut native: Vec<(&SyscallSet, u32, &ArgValues)> =
        vec![(&n.allowed, arg_phase::ALLOWED, &learned.args)];
    if with_setup {
        native.push((&n.setup, arg_phase::SETUP, &learned.args));
    }
    if opts.include_refused {
        native.push((&n.refused, arg_phase::REFUSED, &learned.args));
    }
    native.push((&baseline.native.allowed, arg_phase::ALLOWED, &baseline.args));
    for (set, phase, args) in native {
        for nr in set.iter() {
            let Some(name) = arch.name(nr) else {
                c.unnamed.push(nr);
                continue;
            };
            let call = arg_call_of(name).filter(|_| opts.args);
            match call.and_then(|call| Some((call, args.get(call, phase)?))) {
                Some((call, Seen::Values(v))) => acc.values(name, call, v),
                _ => acc.any(name),
            }
        }
    }
    let mut compat = vec![&learned.compat.allowed];
    if with_setup {
        compat.push(&learned.compat.setup);
    }
    if opts.include_refused {
        compat.push(&learned.compat.refused);
    }
    for nr in compat.into_iter().flat_map(|s| s.iter()) {
        match arch.compat().and_then(|a| a.name(nr)) {
            Some(name) => {
                // Docker's rules apply to every architecture of the profile, and no argument
                // is recorded for compat calls: allowed as such.
                acc.any(name);
                c.compat.insert(name);
            }
            None => c.unnamed_compat.push(nr),
        }
    }
    if let Some(Some((_, flags))) = acc.0.get("clone3").cloned() {
        acc.0.remove("clone3");
        acc.values("clone", arg_call::CLONE, &flags);
        c.clone3_to_clone = true;
    }
    for (name, rule) in acc.0 {
        c.allowed.insert(name);
        if let Some((call, values)) = rule {
            let call = if call == arg_call::CLONE3 {
                arg_call::CLONE
            } else {
                call
            };
            c.conditions.insert(
                name,
                values.into_iter().map(|v| condition(call, v)).collect(),
            );
        }
    }
    c.unnamed.sort_unstable();
    c.unnamed.dedup();
    c.unnamed_compat.sort_unstable();
    c.unnamed_compat.dedup();
    let mut learned_only = n.allowed.clone();
    if with_setup {
        learned_only.extend(&n.setup);
    }
    let name = |nr| arch.name(nr);
    c.from_baseline = baseline
        .native
        .allowed
        .iter()
        .filter(|&nr| !learned_only.contains(nr))
        .filter_map(name)
        .filter(|n| c.allowed.contains(n))
        .collect();
    if opts.include_refused {
        c.refused_included = n
            .refused
            .iter()
            .filter_map(name)
            .filter(|n| c.allowed.contains(n))
            .collect();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use args::ArgCmp;

    const OPTS: ComposeOptions = ComposeOptions {
        include_refused: true,
        include_setup: false,
        args: true,
    };

    fn native(calls: Calls) -> Learned {
        Learned {
            native: calls,
            ..Default::default()
        }
    }

    fn set(names: &[&str]) -> SyscallSet {
        names
            .iter()
            .map(|n| Arch::X86_64.number(n).unwrap())
            .collect()
    }

    #[test]
    fn setup_calls_stay_out_when_the_target_is_filtered() {
        let learned = native(Calls {
            allowed: set(&["read", "write"]),
            setup: set(&["mount", "pivot_root"]),
            refused: set(&["mbind"]),
        });
        let c = compose(
            Arch::X86_64,
            &learned,
            &native(Calls {
                allowed: set(&["setgroups", "read"]),
                ..Default::default()
            }),
            OPTS,
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
            &Learned::default(),
            ComposeOptions {
                include_refused: false,
                ..OPTS
            },
        );
        assert!(!c.allowed.contains("mbind"));
    }

    #[test]
    fn run_counts_calls_made_before_the_programs_own_filter() {
        let learned = native(Calls {
            allowed: set(&["read"]),
            setup: set(&["mount"]),
            ..Default::default()
        });
        let opts = ComposeOptions {
            include_setup: true,
            ..OPTS
        };
        let c = compose(Arch::X86_64, &learned, &Learned::default(), opts);
        assert!(c.allowed.contains("mount") && c.allowed.contains("read"));
    }

    #[test]
    fn unconfined_target_uses_setup_calls() {
        let learned = native(Calls {
            setup: set(&["read", "mount"]),
            ..Default::default()
        });
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert!(c.unconfined);
        assert!(c.allowed.contains("mount"));
    }

    fn masked(value_two: u64) -> Condition {
        vec![ArgCmp {
            index: 0,
            op: args::CmpOp::MaskedEq,
            value: tracer_common::CLONE_NS_FLAGS,
            value_two,
        }]
    }

    #[test]
    fn argument_rules_are_as_narrow_as_what_ran() {
        let mut learned = native(Calls {
            allowed: set(&["socket", "clone", "personality", "read"]),
            refused: set(&["unshare"]),
            ..Default::default()
        });
        learned.args.add(arg_call::SOCKET, arg_phase::ALLOWED, 1);
        learned.args.add(arg_call::SOCKET, arg_phase::ALLOWED, 2);
        learned.args.add(arg_call::CLONE, arg_phase::ALLOWED, 0);
        learned
            .args
            .add(arg_call::UNSHARE, arg_phase::REFUSED, 0x0400_0000);
        // personality's value was lost (map full): its rule stays unconditional.
        learned
            .args
            .set_any(arg_call::PERSONALITY, arg_phase::ALLOWED);
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert_eq!(c.conditions["socket"].len(), 2);
        assert_eq!(
            c.conditions["clone"],
            [masked(0)].into_iter().collect::<BTreeSet<_>>()
        );
        let unshare = c.conditions["unshare"].iter().next().unwrap();
        assert_eq!(unshare[0].value_two, 0x0400_0000);
        assert!(!c.conditions.contains_key("personality"));
        assert!(c.allowed.contains("personality") && !c.conditions.contains_key("read"));
        // --no-args: everything unconditional.
        let c = compose(
            Arch::X86_64,
            &learned,
            &Learned::default(),
            ComposeOptions {
                args: false,
                ..OPTS
            },
        );
        assert!(c.conditions.is_empty() && c.allowed.contains("socket"));
        // A phase that does not go into the profile does not widen it either.
        learned.args.add(arg_call::SOCKET, arg_phase::SETUP, 17);
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert_eq!(c.conditions["socket"].len(), 2);
    }

    #[test]
    fn a_call_seen_without_its_argument_is_unconditional() {
        let learned = native(Calls {
            allowed: set(&["socket"]),
            ..Default::default()
        });
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert!(c.allowed.contains("socket") && c.conditions.is_empty());
    }

    #[test]
    fn clone3_becomes_clone_with_the_same_flags() {
        let mut learned = native(Calls {
            allowed: set(&["clone3"]),
            ..Default::default()
        });
        learned.args.add(arg_call::CLONE3, arg_phase::ALLOWED, 0);
        learned
            .args
            .add(arg_call::CLONE3, arg_phase::ALLOWED, 0x2000_0080);
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert!(c.clone3_to_clone && !c.allowed.contains("clone3"));
        // CLONE_NEWTIME (0x80) is the exit signal's bit in clone: only the mask's bits count.
        assert_eq!(
            c.conditions["clone"],
            [masked(0), masked(0x2000_0000)]
                .into_iter()
                .collect::<BTreeSet<_>>()
        );
    }

    #[test]
    fn compat_calls_take_i386_names() {
        let learned = Learned {
            compat: Calls {
                // i386 102 is socketcall; on x86_64, 102 is getuid.
                allowed: [102, 999].into_iter().collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = compose(Arch::X86_64, &learned, &Learned::default(), OPTS);
        assert!(c.allowed.contains("socketcall") && !c.allowed.contains("getuid"));
        assert!(c.compat.contains("socketcall"));
        assert_eq!(c.unnamed_compat, [999]);
        let c = compose(Arch::Aarch64, &learned, &Learned::default(), OPTS);
        assert_eq!(c.unnamed_compat, [102, 999]);
        assert!(c.allowed.is_empty());
    }
}
