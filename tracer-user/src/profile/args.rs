//! Pure: argument rules. The kernel keeps the first argument of the calls Docker's default
//! profile filters by argument (`personality`, `socket`, `clone`, `unshare`, `clone3`); this
//! turns the values seen into seccomp conditions as narrow as what ran, and describes them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tracer_common::{arg_call, arg_phase, ArgKey, CLONE_NS_FLAGS, UNSHARE_NS_FLAGS};

/// Names of the calls whose first argument is recorded, by `tracer_common::arg_call` index.
pub const ARG_CALLS: [&str; arg_call::COUNT] =
    ["personality", "socket", "clone", "unshare", "clone3"];

/// The `arg_call` index of `name`, if its argument is recorded.
pub fn arg_call_of(name: &str) -> Option<usize> {
    ARG_CALLS.iter().position(|&n| n == name)
}

/// A seccomp argument comparison (libseccomp's `SCMP_CMP_*`), written by that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `arg & value == value_two`
    MaskedEq,
}

impl CmpOp {
    pub fn scmp_name(self) -> &'static str {
        match self {
            Self::Ne => "SCMP_CMP_NE",
            Self::Lt => "SCMP_CMP_LT",
            Self::Le => "SCMP_CMP_LE",
            Self::Eq => "SCMP_CMP_EQ",
            Self::Ge => "SCMP_CMP_GE",
            Self::Gt => "SCMP_CMP_GT",
            Self::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }

    pub const ALL: [Self; 7] = [
        Self::Ne,
        Self::Lt,
        Self::Le,
        Self::Eq,
        Self::Ge,
        Self::Gt,
        Self::MaskedEq,
    ];

    pub fn from_scmp(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.scmp_name() == name)
    }
}

impl From<CmpOp> for &'static str {
    fn from(op: CmpOp) -> Self {
        op.scmp_name()
    }
}

impl TryFrom<String> for CmpOp {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::from_scmp(&name).ok_or(name)
    }
}

/// One comparison on argument `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArgCmp {
    pub index: u32,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

/// Comparisons that must all hold. A call with several conditions is allowed when any holds.
pub type Condition = Vec<ArgCmp>;

/// The condition that allows exactly the recorded value `value` of call `call`.
pub fn condition(call: usize, value: u64) -> Condition {
    let masked = |mask| ArgCmp {
        index: 0,
        op: CmpOp::MaskedEq,
        value: mask,
        value_two: value & mask,
    };
    vec![match call {
        arg_call::CLONE => masked(CLONE_NS_FLAGS),
        arg_call::UNSHARE | arg_call::CLONE3 => masked(UNSHARE_NS_FLAGS),
        _ => ArgCmp {
            index: 0,
            op: CmpOp::Eq,
            value,
            value_two: 0,
        },
    }]
}

/// What was seen of one call's argument in one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seen {
    Values(BTreeSet<u64>),
    /// A value could not be kept: the rule must not be narrowed.
    Any,
}

impl Seen {
    fn merge(&mut self, other: &Seen) {
        match (&mut *self, other) {
            (Seen::Values(a), Seen::Values(b)) => a.extend(b),
            (_, Seen::Any) => *self = Seen::Any,
            (Seen::Any, _) => {}
        }
    }
}

/// Argument values seen, by (`arg_call` index, `arg_phase`). Serialized as a list (JSON
/// object keys cannot be pairs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<((usize, u32), Seen)>", into = "Vec<((usize, u32), Seen)>")]
pub struct ArgValues(BTreeMap<(usize, u32), Seen>);

impl From<Vec<((usize, u32), Seen)>> for ArgValues {
    fn from(v: Vec<((usize, u32), Seen)>) -> Self {
        Self(v.into_iter().collect())
    }
}

impl From<ArgValues> for Vec<((usize, u32), Seen)> {
    fn from(a: ArgValues) -> Self {
        a.0.into_iter().collect()
    }
}

impl ArgValues {
    /// From the kernel's `ARGS` keys of one cgroup and its `arg_overflow` bits.
    pub fn from_kernel(keys: impl IntoIterator<Item = ArgKey>, overflow: u64) -> Self {
        let mut out = Self::default();
        for k in keys {
            if (k.call as usize) < arg_call::COUNT {
                out.add(k.call as usize, k.phase, k.value);
            }
        }
        for bit in 0..64u32 {
            let call = (bit % 8) as usize;
            if overflow & (1 << bit) != 0 && call < arg_call::COUNT {
                out.0.insert((call, bit / 8), Seen::Any);
            }
        }
        out
    }

    pub fn add(&mut self, call: usize, phase: u32, value: u64) {
        match self
            .0
            .entry((call, phase))
            .or_insert_with(|| Seen::Values(BTreeSet::new()))
        {
            Seen::Values(v) => {
                v.insert(value);
            }
            Seen::Any => {}
        }
    }

    pub fn set_any(&mut self, call: usize, phase: u32) {
        self.0.insert((call, phase), Seen::Any);
    }

    pub fn get(&self, call: usize, phase: u32) -> Option<&Seen> {
        self.0.get(&(call, phase))
    }

    pub fn merge(&mut self, other: &ArgValues) {
        for (k, v) in &other.0 {
            match self.0.get_mut(k) {
                Some(mine) => mine.merge(v),
                None => {
                    self.0.insert(*k, v.clone());
                }
            }
        }
    }

    /// Values seen while allowed, by call name (for the runtime-baseline cache).
    pub fn allowed_values(&self) -> BTreeMap<String, Vec<u64>> {
        self.0
            .iter()
            .filter(|((_, phase), _)| *phase == arg_phase::ALLOWED)
            .filter_map(|((call, _), seen)| match seen {
                Seen::Values(v) => {
                    Some((ARG_CALLS[*call].to_string(), v.iter().copied().collect()))
                }
                Seen::Any => None,
            })
            .collect()
    }
}

const AF_NAMES: &[(u64, &str)] = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (3, "AF_AX25"),
    (4, "AF_IPX"),
    (5, "AF_APPLETALK"),
    (9, "AF_X25"),
    (10, "AF_INET6"),
    (15, "AF_KEY"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (21, "AF_RDS"),
    (29, "AF_CAN"),
    (30, "AF_TIPC"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (40, "AF_VSOCK"),
    (44, "AF_XDP"),
];

const NS_FLAG_NAMES: &[(u64, &str)] = &[
    (0x80, "CLONE_NEWTIME"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
];

fn ns_flags(v: u64) -> String {
    let names: Vec<&str> = NS_FLAG_NAMES
        .iter()
        .filter(|(bit, _)| v & bit != 0)
        .map(|&(_, n)| n)
        .collect();
    let rest = NS_FLAG_NAMES.iter().fold(v, |acc, (bit, _)| acc & !bit);
    match (names.is_empty(), rest) {
        (true, 0) => "no namespace flag".into(),
        (_, 0) => names.join("|"),
        _ => format!("{}|{rest:#x}", names.join("|")),
    }
}

/// One comparison in words, naming socket families and namespace flags where it can.
pub fn describe_cmp(call: &str, c: &ArgCmp) -> String {
    let value = match (call, c.op) {
        ("socket", CmpOp::Eq | CmpOp::Ne) if c.index == 0 => AF_NAMES
            .iter()
            .find(|(n, _)| *n == c.value)
            .map(|&(_, name)| name.to_string())
            .unwrap_or_else(|| c.value.to_string()),
        ("clone" | "unshare" | "clone3", CmpOp::MaskedEq) if c.index == 0 => {
            return if c.value_two == 0 && c.value & CLONE_NS_FLAGS == CLONE_NS_FLAGS {
                "no namespace flag".into()
            } else {
                ns_flags(c.value_two)
            };
        }
        _ => format!("{:#x}", c.value),
    };
    match c.op {
        CmpOp::Eq => value,
        CmpOp::MaskedEq => format!("arg{} & {:#x} == {:#x}", c.index, c.value, c.value_two),
        op => format!("arg{} {} {value}", c.index, op.scmp_name()),
    }
}

/// A call's conditions in words: `AF_UNIX, AF_INET`.
pub fn describe(call: &str, conditions: &BTreeSet<Condition>) -> String {
    conditions
        .iter()
        .map(|c| {
            c.iter()
                .map(|cmp| describe_cmp(call, cmp))
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(call: usize, phase: u32, value: u64) -> ArgKey {
        ArgKey {
            cgroup_id: 7,
            call: call as u32,
            phase,
            value,
        }
    }

    #[test]
    fn kernel_keys_and_overflow() {
        let a = ArgValues::from_kernel(
            [
                key(arg_call::SOCKET, arg_phase::ALLOWED, 1),
                key(arg_call::SOCKET, arg_phase::ALLOWED, 2),
                key(arg_call::CLONE, arg_phase::SETUP, 0x2000_0000),
            ],
            1 << (arg_phase::REFUSED * 8 + arg_call::UNSHARE as u32),
        );
        assert_eq!(
            a.get(arg_call::SOCKET, arg_phase::ALLOWED),
            Some(&Seen::Values([1, 2].into()))
        );
        assert_eq!(
            a.get(arg_call::UNSHARE, arg_phase::REFUSED),
            Some(&Seen::Any)
        );
        assert_eq!(a.get(arg_call::CLONE, arg_phase::ALLOWED), None);
        let mut b = ArgValues::default();
        b.set_any(arg_call::SOCKET, arg_phase::ALLOWED);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(
            m.get(arg_call::SOCKET, arg_phase::ALLOWED),
            Some(&Seen::Any)
        );
        assert_eq!(
            a.allowed_values(),
            [("socket".to_string(), vec![1, 2])].into()
        );
    }

    #[test]
    fn conditions_match_dockers_style() {
        // Docker's default: clone allowed when flags & 0x7E020000 == 0.
        assert_eq!(
            condition(arg_call::CLONE, 0),
            vec![ArgCmp {
                index: 0,
                op: CmpOp::MaskedEq,
                value: 2114060288,
                value_two: 0
            }]
        );
        let c = condition(arg_call::PERSONALITY, 0xffff_ffff);
        assert_eq!((c[0].op, c[0].value), (CmpOp::Eq, 0xffff_ffff));
        assert_eq!(condition(arg_call::UNSHARE, 0x80)[0].value_two, 0x80);
    }

    #[test]
    fn descriptions() {
        let set = |v: Vec<Condition>| v.into_iter().collect::<BTreeSet<_>>();
        assert_eq!(
            describe("socket", &set(vec![condition(1, 1), condition(1, 10)])),
            "AF_UNIX, AF_INET6"
        );
        assert_eq!(
            describe(
                "unshare",
                &set(vec![condition(3, 0x0400_0000 | 0x0002_0000)])
            ),
            "CLONE_NEWNS|CLONE_NEWUTS"
        );
        assert_eq!(
            describe("clone", &set(vec![condition(2, 0)])),
            "no namespace flag"
        );
        assert_eq!(describe("personality", &set(vec![condition(0, 8)])), "0x8");
        assert_eq!(
            CmpOp::from_scmp("SCMP_CMP_MASKED_EQ"),
            Some(CmpOp::MaskedEq)
        );
    }

    #[test]
    fn operators_are_written_by_their_libseccomp_names() {
        for op in CmpOp::ALL {
            let v = serde_json::to_value(op).unwrap();
            assert_eq!(v, op.scmp_name());
            assert_eq!(serde_json::from_value::<CmpOp>(v).unwrap(), op);
        }
        assert!(serde_json::from_value::<CmpOp>("SCMP_CMP_FOO".into()).is_err());
    }
}
