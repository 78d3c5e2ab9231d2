//! Pure: the documents each platform reads, as serde types that follow the real schemas
//! (moby's `profiles/seccomp`, the OCI runtime spec's `LinuxSeccomp`, the Security Profiles
//! Operator's `SeccompProfile`), and the two conversions every format shares: a `Profile` to
//! rules, and rules back to a `Profile`. Nothing here does I/O.
//!
//! Reading is lenient where Docker is (unknown fields are ignored, `null` lists are empty), but
//! the values a profile's meaning depends on (actions, names, operators) are kept as written
//! when they are not understood ([`Lenient`]), so that the error can say what and where.

mod docker;
mod oci;
mod spo;

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub(super) use docker::looks_like as looks_like_docker;
pub use docker::{ArchMap, DockerProfile, DockerRule, Filter};
pub use oci::LinuxSeccomp;
pub use spo::{kube_name, Metadata, SeccompProfile, SeccompProfileSpec, SPO_API_VERSION, SPO_KIND};

use super::args::{ArgCmp, CmpOp, Condition};
use super::formats::{
    arch_name, escape, is_syscall_name, FormatError, FormatWarning, Profile, DEFAULT_ERRNO,
    ENOSYS_FALLBACK,
};
use crate::syscalls::Arch;

const ENOSYS: u32 = 38;
/// Docker's format keeps rule comments: the calls the profile in force refused while
/// recording, allowed here, are marked with this one (and read back by it).
pub const REFUSED_COMMENT: &str = "refused by the profile in force while recording";

/// A rule's or the default action (libseccomp's `SCMP_ACT_*`), written by that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Action {
    Allow,
    Errno,
    Kill,
    KillProcess,
    KillThread,
    Trap,
    Trace,
    Log,
    Notify,
}

impl Action {
    pub const ALL: [Self; 9] = [
        Self::Allow,
        Self::Errno,
        Self::Kill,
        Self::KillProcess,
        Self::KillThread,
        Self::Trap,
        Self::Trace,
        Self::Log,
        Self::Notify,
    ];

    pub fn scmp_name(self) -> &'static str {
        match self {
            Self::Allow => "SCMP_ACT_ALLOW",
            Self::Errno => "SCMP_ACT_ERRNO",
            Self::Kill => "SCMP_ACT_KILL",
            Self::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Self::KillThread => "SCMP_ACT_KILL_THREAD",
            Self::Trap => "SCMP_ACT_TRAP",
            Self::Trace => "SCMP_ACT_TRACE",
            Self::Log => "SCMP_ACT_LOG",
            Self::Notify => "SCMP_ACT_NOTIFY",
        }
    }

    pub fn from_scmp(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.scmp_name() == name)
    }
}

impl From<Action> for &'static str {
    fn from(a: Action) -> Self {
        a.scmp_name()
    }
}

impl TryFrom<String> for Action {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::from_scmp(&name).ok_or(name)
    }
}

/// A field as the document has it: a value we understand, or the JSON that stood there instead.
/// Rendering only ever writes `Known`; reading turns `Other` into an error that says where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lenient<T> {
    Known(T),
    Other(Value),
}

impl<T> From<T> for Lenient<T> {
    fn from(v: T) -> Self {
        Self::Known(v)
    }
}

/// A rule as the OCI runtime spec has it (`LinuxSyscall`); the operator's resource takes the same,
/// and Docker's rule extends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Required by the OCI spec and the operator; Docker also takes the older single `name`.
    /// `None` when absent; `names: null` is `Some(Other(Null))`, an error when read.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub names: Option<Lenient<Vec<String>>>,
    pub action: Lenient<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Comparisons that must all hold; empty: the rule is unconditional.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Arg>,
}

/// One argument comparison (`LinuxSeccompArg`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    /// Optional when read: the operator's Go types omit a zero `value`.
    #[serde(default)]
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Lenient<CmpOp>,
}

/// `Some` even for `null`, so that `names: null` is told apart from no `names`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A list that may be `null` (Go's JSON writes an empty slice so), read as empty.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Rule {
    fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        action: Action,
        errno_ret: Option<u32>,
        args: Vec<Arg>,
    ) -> Self {
        Self {
            names: Some(Lenient::Known(
                names.into_iter().map(String::from).collect(),
            )),
            action: action.into(),
            errno_ret,
            args,
        }
    }
}

impl From<&ArgCmp> for Arg {
    fn from(a: &ArgCmp) -> Self {
        Self {
            index: a.index,
            value: a.value,
            value_two: a.value_two,
            op: a.op.into(),
        }
    }
}

/// `defaultAction` and `defaultErrnoRet`: log what is not allowed, allow it (a permissive
/// profile read from a file), or refuse it with EPERM.
fn defaults(p: &Profile) -> (Action, Option<u32>) {
    if p.complain {
        (Action::Log, None)
    } else if p.permissive {
        (Action::Allow, None)
    } else {
        (Action::Errno, Some(DEFAULT_ERRNO))
    }
}

/// The native architecture and its compat ones, as a flat list.
fn arch_list(arch: Arch) -> Vec<String> {
    let (main, subs) = arch.docker_arches();
    std::iter::once(main)
        .chain(subs.iter().copied())
        .map(String::from)
        .collect()
}

/// The rules of `p`, each with the comment Docker's format adds to it: the unconditional calls,
/// those refused while recording, one rule per argument condition, and the calls answered
/// ENOSYS so that libc falls back to an older one.
fn rules(arch: Arch, p: &Profile) -> Vec<(Rule, Option<&'static str>)> {
    let (refused, learned): (Vec<&String>, Vec<&String>) = p
        .allowed
        .iter()
        .filter(|n| !p.conditions.contains_key(*n))
        .partition(|n| p.refused.contains(*n));
    let mut rules = Vec::new();
    // A rule naming nothing is left out: the OCI spec requires at least one name.
    for (names, comment) in [(learned, None), (refused, Some(REFUSED_COMMENT))] {
        if !names.is_empty() {
            let names = names.into_iter().map(String::as_str);
            rules.push((Rule::new(names, Action::Allow, None, vec![]), comment));
        }
    }
    for (name, conditions) in &p.conditions {
        if !p.allowed.contains(name) {
            continue;
        }
        let comment = p.refused.contains(name).then_some(REFUSED_COMMENT);
        for c in conditions {
            let args = c.iter().map(Arg::from).collect();
            rules.push((
                Rule::new([name.as_str()], Action::Allow, None, args),
                comment,
            ));
        }
    }
    let fallbacks: Vec<&str> = ENOSYS_FALLBACK
        .iter()
        .copied()
        .filter(|n| !p.allowed.contains(*n) && arch.number(n).is_some())
        .collect();
    if !fallbacks.is_empty() {
        rules.push((
            Rule::new(fallbacks, Action::Errno, Some(ENOSYS), vec![]),
            None,
        ));
    }
    rules
}

/// One rule as read, whatever the format.
struct RuleView<'a> {
    rule: &'a Rule,
    /// Docker's older single `name`.
    name: Option<&'a Lenient<String>>,
    comment: Option<&'a str>,
    /// Applies only with some capabilities, architectures or kernels (Docker's `includes`): it
    /// does not say what the profile allows.
    host_dependent: bool,
}

impl<'a> From<&'a Rule> for RuleView<'a> {
    fn from(rule: &'a Rule) -> Self {
        Self {
            rule,
            name: None,
            comment: None,
            host_dependent: false,
        }
    }
}

/// A value for an error message: a string as it is but [`escape`]d, anything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => escape(s).into_owned(),
        other => other.to_string(),
    }
}

fn known_action(a: &Lenient<Action>, at: impl FnOnce() -> String) -> Result<Action, FormatError> {
    match a {
        Lenient::Known(a) => Ok(*a),
        Lenient::Other(v) => Err(FormatError::UnknownAction {
            at: at(),
            found: shown(v),
        }),
    }
}

/// Where in a rule a name is.
#[derive(Clone, Copy)]
enum NameAt {
    /// `names[i]`
    Names(usize),
    /// Docker's older single `name`.
    Name,
}

impl NameAt {
    fn path(self, rule_at: &str) -> String {
        match self {
            Self::Names(j) => format!("{rule_at}.names[{j}]"),
            Self::Name => format!("{rule_at}.name"),
        }
    }
}

/// The names a rule lists, in `names` or the older `name`, with where each is. As moby reads
/// them: an empty `name` is none (Go's zero value), and a rule may not have both; a rule that
/// names nothing is ignored by Docker, so it adds to `warnings`.
fn rule_names<'a>(
    r: &RuleView<'a>,
    at: &str,
    warnings: &mut Vec<FormatWarning>,
) -> Result<Vec<(NameAt, &'a String)>, FormatError> {
    let name = match r.name {
        None => None,
        Some(Lenient::Known(n)) => (!n.is_empty()).then_some(n),
        Some(Lenient::Other(v)) => {
            return Err(FormatError::NotAName {
                at: format!("{at}.name"),
                found: v.to_string(),
            })
        }
    };
    let names: &[String] = match r.rule.names.as_ref() {
        None => &[],
        Some(Lenient::Known(names)) => names,
        Some(Lenient::Other(Value::Null)) => {
            if name.is_none() {
                warnings.push(FormatWarning::NamesNull {
                    at: format!("{at}.names"),
                });
            }
            &[]
        }
        Some(Lenient::Other(v)) => {
            let (at, found) = match v.as_array() {
                Some(list) => list
                    .iter()
                    .enumerate()
                    .find(|(_, n)| !n.is_string())
                    .map(|(j, n)| (format!("{at}.names[{j}]"), n))
                    .unwrap_or((format!("{at}.names"), v)),
                None => (format!("{at}.names"), v),
            };
            return Err(FormatError::NotAName {
                at,
                found: found.to_string(),
            });
        }
    };
    let out: Vec<(NameAt, &String)> = match name {
        Some(_) if !names.is_empty() => {
            return Err(FormatError::NameAndNames { at: at.to_string() })
        }
        Some(n) => vec![(NameAt::Name, n)],
        None => names
            .iter()
            .enumerate()
            .map(|(j, n)| (NameAt::Names(j), n))
            .collect(),
    };
    if out.is_empty() && !matches!(r.rule.names, Some(Lenient::Other(Value::Null))) {
        warnings.push(FormatWarning::NoNames { at: at.to_string() });
    }
    // runc: "empty string is not a valid syscall".
    if let Some((name_at, _)) = out.iter().find(|(_, n)| n.is_empty()) {
        return Err(FormatError::EmptyName {
            at: name_at.path(at),
        });
    }
    Ok(out)
}

/// A rule's `args` as a condition, sorted; `None` when empty (the rule is unconditional).
fn condition(args: &[Arg], at: &str) -> Result<Option<Condition>, FormatError> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut c = Condition::new();
    for (j, a) in args.iter().enumerate() {
        let op = match &a.op {
            Lenient::Known(op) => *op,
            Lenient::Other(v) => {
                return Err(FormatError::UnknownOp {
                    at: format!("{at}.args[{j}].op"),
                    found: shown(v),
                })
            }
        };
        c.push(ArgCmp {
            index: a.index,
            op,
            value: a.value,
            value_two: a.value_two,
        });
    }
    c.sort();
    Ok(Some(c))
}

/// A document read: what it allows, and what in it Docker ignores (left out of `profile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub profile: Profile,
    pub warnings: Vec<FormatWarning>,
}

/// What a document allows: the names of its ALLOW rules that do not depend on the host, less
/// the names no architecture has (warned about in any rule: a typo in a rule that refuses is
/// worth a word too). `at` is where the document's body is (`spec.`, `linux.seccomp.`, or
/// empty), for errors; `host` names the architecture in warnings.
fn read<'a>(
    default: &Lenient<Action>,
    rules: impl IntoIterator<Item = RuleView<'a>>,
    at: &str,
    host: Arch,
) -> Result<Read, FormatError> {
    let default = known_action(default, || format!("{at}defaultAction"))?;
    let mut p = Profile {
        complain: default == Action::Log,
        permissive: default == Action::Allow,
        ..Default::default()
    };
    let mut unconditional = BTreeSet::new();
    let mut warnings = Vec::new();
    for (i, r) in rules.into_iter().enumerate() {
        let at = format!("{at}syscalls[{i}]");
        let action = known_action(&r.rule.action, || format!("{at}.action"))?;
        let mut names = rule_names(&r, &at, &mut warnings)?;
        let condition = condition(&r.rule.args, &at)?;
        names.retain(|&(name_at, n)| {
            let known = is_syscall_name(n);
            if !known {
                warnings.push(FormatWarning::UnknownSyscall {
                    at: name_at.path(&at),
                    name: n.clone(),
                    arch: arch_name(host),
                });
            }
            known
        });
        if action != Action::Allow || r.host_dependent {
            continue;
        }
        for (_, n) in names {
            if r.comment == Some(REFUSED_COMMENT) {
                p.refused.insert(n.clone());
            }
            match &condition {
                None => {
                    unconditional.insert(n.clone());
                }
                Some(c) => {
                    p.conditions.entry(n.clone()).or_default().insert(c.clone());
                }
            }
            p.allowed.insert(n.clone());
        }
    }
    p.conditions.retain(|n, _| !unconditional.contains(n));
    Ok(Read {
        profile: p,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn actions_are_written_by_their_libseccomp_names() {
        for a in Action::ALL {
            let v = serde_json::to_value(a).unwrap();
            assert_eq!(v, a.scmp_name());
            assert_eq!(serde_json::from_value::<Action>(v).unwrap(), a);
        }
        assert_eq!(
            serde_json::from_value::<Lenient<Action>>(json!("SCMP_ACT_FOO")).unwrap(),
            Lenient::Other(json!("SCMP_ACT_FOO"))
        );
    }

    #[test]
    fn names_null_is_told_apart_from_no_names() {
        let rule = |v: Value| serde_json::from_value::<Rule>(v).unwrap().names;
        assert_eq!(rule(json!({ "action": "SCMP_ACT_ALLOW" })), None);
        assert_eq!(
            rule(json!({ "names": null, "action": "SCMP_ACT_ALLOW" })),
            Some(Lenient::Other(Value::Null))
        );
        assert_eq!(
            rule(json!({ "names": ["read"], "action": "SCMP_ACT_ALLOW" })),
            Some(Lenient::Known(vec!["read".into()]))
        );
    }

    #[test]
    fn every_rule_names_a_call() {
        let names = |p: &Profile| -> Vec<usize> {
            rules(Arch::Aarch64, p)
                .iter()
                .map(|(r, _)| match &r.names {
                    Some(Lenient::Known(n)) => n.len(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        // Only conditional calls: no unconditional rule naming nothing (the OCI spec requires
        // a name); the other rule is clone3's ENOSYS.
        let p = Profile {
            allowed: ["socket".to_string()].into(),
            conditions: [(
                "socket".to_string(),
                [super::super::args::condition(1, 1)].into(),
            )]
            .into(),
            ..Default::default()
        };
        assert_eq!(names(&p), [1, 1]);
        assert_eq!(names(&Profile::default()), [1]);
    }
}
