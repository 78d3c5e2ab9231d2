//! Pure: a profile's calls against Docker's default, one verdict each: allowed by the default as
//! the profile uses it (not listed), allowed once some capability is added, never allowed, or
//! allowed by the default for fewer argument values than the profile allows.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{caps::LEAST_PRIVILEGE_FIRST, Context, MobyProfile, Outcome};
use crate::profile::{
    args::{ArgCmp, CmpOp, Condition},
    formats::Profile,
};

/// Why Docker's default does not allow a call the way a profile does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Adding one of these (least privilege first) makes Docker's default allow it.
    Capability { capabilities: Vec<&'static str> },
    /// No capability does.
    Never,
    /// Docker's default allows only some argument values, and the profile allows more.
    Arguments,
}

/// One call a profile allows beyond Docker's default, as `explain` lists it (text and
/// `--json`). More about the call (who made it first) goes in fields beside these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BeyondDefault {
    pub name: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The values comparison `c` leaves for its argument, as an inclusive range, `(1, 0)` when
/// none (`None`: it does not bound the argument to one range, as `!=` and masks do not).
fn range(c: &ArgCmp) -> Option<(u64, u64)> {
    const NONE: (u64, u64) = (1, 0);
    let v = c.value;
    Some(match c.op {
        CmpOp::Eq => (v, v),
        CmpOp::Lt => v.checked_sub(1).map_or(NONE, |h| (0, h)),
        CmpOp::Le => (0, v),
        CmpOp::Gt => v.checked_add(1).map_or(NONE, |l| (l, u64::MAX)),
        CmpOp::Ge => (v, u64::MAX),
        CmpOp::Ne | CmpOp::MaskedEq => return None,
    })
}

/// Whether every argument that satisfies all of `p` satisfies `d` too.
fn implies_cmp(p: &[ArgCmp], d: &ArgCmp) -> bool {
    let on: Vec<&ArgCmp> = p.iter().filter(|c| c.index == d.index).collect();
    // A mask of the profile's that fixes every bit `d`'s mask looks at, to the same values.
    let masked = |c: &&ArgCmp| {
        c.op == CmpOp::MaskedEq
            && d.op == CmpOp::MaskedEq
            && d.value & !c.value == 0
            && c.value_two & d.value == d.value_two
    };
    if on.iter().any(masked) {
        return true;
    }
    let (lo, hi) = on
        .iter()
        .filter_map(|c| range(c))
        .fold((0, u64::MAX), |(l, h), (a, b)| (l.max(a), h.min(b)));
    if lo > hi {
        // The profile's condition never holds: within anything.
        return true;
    }
    match d.op {
        CmpOp::MaskedEq => lo == hi && lo & d.value == d.value_two,
        CmpOp::Ne => !(lo..=hi).contains(&d.value),
        _ => range(d).is_some_and(|(dl, dh)| dl <= lo && hi <= dh),
    }
}

/// Whether condition `p` (comparisons that all hold) implies condition `d`.
fn implies(p: &Condition, d: &Condition) -> bool {
    d.iter().all(|dc| implies_cmp(p, dc))
}

/// Whether comparison `c` holds for argument value `v`.
fn holds(c: &ArgCmp, v: u64) -> bool {
    match c.op {
        CmpOp::Ne => v != c.value,
        CmpOp::Lt => v < c.value,
        CmpOp::Le => v <= c.value,
        CmpOp::Eq => v == c.value,
        CmpOp::Ge => v >= c.value,
        CmpOp::Gt => v > c.value,
        CmpOp::MaskedEq => v & c.value == c.value_two,
    }
}

/// Whether no argument that satisfies `p` satisfies `r`: `p` pins an argument to one value
/// (`==`) for which one of `r`'s comparisons fails.
fn excludes(p: &Condition, r: &Condition) -> bool {
    p.iter().filter(|c| c.op == CmpOp::Eq).any(|pin| {
        r.iter()
            .any(|rc| rc.index == pin.index && !holds(rc, pin.value))
    })
}

/// Whether `outcome` lets a call through as a profile allows it: with any arguments
/// (`conditions` `None`), or only when one of `conditions` holds. Each of those must imply one
/// of the outcome's allowing conditions (one rule, not several together: enough for the values
/// a recorded profile lists), or exclude every one of its refusing conditions.
pub fn covered(outcome: &Outcome, conditions: Option<&BTreeSet<Condition>>) -> bool {
    match (outcome, conditions) {
        (Outcome::Allowed, _) => true,
        (Outcome::AllowedWhen(rules), Some(cs)) => {
            !cs.is_empty() && cs.iter().all(|c| rules.iter().any(|r| implies(c, r)))
        }
        (Outcome::RefusedWhen(rules), Some(cs)) => {
            !cs.is_empty() && cs.iter().all(|c| rules.iter().all(|r| excludes(c, r)))
        }
        _ => false,
    }
}

/// The verdict on call `name`, allowed by a profile with `conditions` (`None`: any
/// arguments), against `default` in `ctx`; `None` when the default allows it so already.
pub fn verdict(
    default: &MobyProfile,
    ctx: &Context,
    name: &str,
    conditions: Option<&BTreeSet<Condition>>,
) -> Option<Verdict> {
    let outcome = default.outcome(name, ctx);
    if covered(&outcome, conditions) {
        return None;
    }
    let mut some_arguments = matches!(outcome, Outcome::AllowedWhen(_));
    let mut capabilities = Vec::new();
    for &cap in LEAST_PRIVILEGE_FIRST.iter().filter(|c| !ctx.caps.has(c)) {
        let with = default.outcome(name, &ctx.with_cap(cap));
        some_arguments |= matches!(with, Outcome::AllowedWhen(_));
        if covered(&with, conditions) {
            capabilities.push(cap);
        }
    }
    Some(if !capabilities.is_empty() {
        Verdict::Capability { capabilities }
    } else if some_arguments {
        Verdict::Arguments
    } else {
        Verdict::Never
    })
}

/// Every call `p` allows that `default` does not allow as `p` does in `ctx`, by name.
pub fn beyond_default(p: &Profile, default: &MobyProfile, ctx: &Context) -> Vec<BeyondDefault> {
    p.allowed
        .iter()
        .filter_map(|name| {
            let verdict = verdict(default, ctx, name, p.conditions.get(name))?;
            Some(BeyondDefault {
                name: name.clone(),
                verdict,
            })
        })
        .collect()
}
