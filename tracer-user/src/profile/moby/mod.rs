//! Pure: Docker's default seccomp profile (moby's `default.json`, vendored in `data/`), and any
//! profile in Docker's format, evaluated the way dockerd turns it into a filter (moby's
//! `setupSeccomp`): for the daemon's architecture, the container's capabilities and the
//! kernel's version (`includes`/`excludes` with `caps`, `arches`, `minKernel`), keeping the
//! rules' argument comparisons. Nothing here does I/O.

mod caps;
mod refusal;
mod verdict;

use std::{collections::BTreeSet, sync::OnceLock};

use thiserror::Error;

use super::args::{ArgCmp, Condition};
use super::docs::{Action, DockerProfile, DockerRule, Filter, Lenient};
use crate::{
    privileges::{parse_release, KernelVersion},
    syscalls::Arch,
};

pub use caps::{cap_add_name, normalize_cap, CapSet, DOCKER_DEFAULT_CAPS, LEAST_PRIVILEGE_FIRST};
pub use refusal::{refusal_hint, ContainerSecurity, SeccompInForce};
pub use verdict::{beyond_default, covered, verdict, BeyondDefault, Verdict};

/// moby's `seccomp/default.json`, unmodified (see `data/README.md`).
pub const DEFAULT_JSON: &str = include_str!("../../../data/moby-default-seccomp.json");

/// Why a document cannot be evaluated as Docker would.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MobyError {
    #[error("not a Docker seccomp profile: {0}")]
    Json(String),
    #[error("syscalls[{rule}]: {what}")]
    Rule { rule: usize, what: String },
}

/// The host dockerd builds the filter on: its native architecture (moby matches `arches`
/// against it, for the compat calls too) and its kernel (for `minKernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub arch: Arch,
    pub kernel: KernelVersion,
}

impl Host {
    /// libseccomp's name of the native architecture, as moby's `arches` lists it.
    fn native(self) -> &'static str {
        match self.arch {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::I386 => "x86",
        }
    }
}

/// What dockerd evaluates a profile against: the host and the container's capabilities
/// (its bounding set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub host: Host,
    pub caps: CapSet,
}

impl Context {
    /// A container with Docker's default capabilities.
    pub fn docker_default(host: Host) -> Self {
        Self {
            host,
            caps: CapSet::docker_default(),
        }
    }

    /// The same with `cap` added.
    pub fn with_cap(&self, cap: &str) -> Self {
        Self {
            host: self.host,
            caps: self.caps.with(cap),
        }
    }
}

/// What a profile does with one call in a context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// With any arguments.
    Allowed,
    /// Only when one of these holds.
    AllowedWhen(Vec<Condition>),
    /// With any arguments, answered with `errno` (`None`: killed, trapped or traced).
    Refused { errno: Option<u32> },
    /// Allowed unless one of these holds (a permissive profile's conditional refusals).
    RefusedWhen(Vec<Condition>),
}

/// One of moby's `Filter`s, read: empty lists are no condition (as in moby).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct HostFilter {
    caps: Vec<String>,
    arches: Vec<String>,
    min_kernel: Option<KernelVersion>,
}

impl HostFilter {
    fn read(f: Option<&Filter>, rule: usize) -> Result<Self, MobyError> {
        let Some(f) = f else {
            return Ok(Self::default());
        };
        if let Some(field) = f.other.keys().next() {
            return Err(MobyError::Rule {
                rule,
                what: format!("a filter on `{field}`, which this moby version does not have"),
            });
        }
        let min_kernel = match &f.min_kernel {
            Some(v) => Some(parse_release(v).ok_or_else(|| MobyError::Rule {
                rule,
                what: format!("minKernel {v:?} is not MAJOR.MINOR"),
            })?),
            None => None,
        };
        Ok(Self {
            caps: f.caps.clone(),
            arches: f.arches.clone(),
            min_kernel,
        })
    }
}

/// One rule, ready to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MobyRule {
    names: BTreeSet<String>,
    action: Action,
    errno: Option<u32>,
    /// Comparisons that must all hold; empty: unconditional.
    args: Condition,
    includes: HostFilter,
    excludes: HostFilter,
}

impl MobyRule {
    /// Whether dockerd keeps this rule in `ctx` (`setupSeccomp`: an exclude that matches drops
    /// it, so does an include that does not; `includes.caps` needs every one of them).
    fn applies(&self, ctx: &Context) -> bool {
        let native = ctx.host.native();
        let kernel_at_least = |v: &KernelVersion| ctx.host.kernel >= *v;
        let (ex, inc) = (&self.excludes, &self.includes);
        let excluded = ex.arches.iter().any(|a| a == native)
            || ex.caps.iter().any(|c| ctx.caps.has(c))
            || ex.min_kernel.as_ref().is_some_and(kernel_at_least);
        let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == native))
            && inc.caps.iter().all(|c| ctx.caps.has(c))
            && inc.min_kernel.as_ref().is_none_or(kernel_at_least);
        !excluded && included
    }
}

/// A Docker-format profile, ready to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MobyProfile {
    default_action: Action,
    default_errno: u32,
    rules: Vec<MobyRule>,
}

/// `SCMP_ACT_ALLOW` and `SCMP_ACT_LOG` let the call through.
fn allows(a: Action) -> bool {
    matches!(a, Action::Allow | Action::Log)
}

impl MobyProfile {
    /// Docker's default profile, read once. An error here is a broken vendored file, which the
    /// unit tests catch; callers report it rather than panic.
    pub fn docker_default() -> Result<&'static Self, MobyError> {
        static DEFAULT: OnceLock<Result<MobyProfile, MobyError>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Self::parse(DEFAULT_JSON))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A profile's JSON text, as `docker run --security-opt seccomp=FILE` takes it.
    pub fn parse(json: &str) -> Result<Self, MobyError> {
        let doc: DockerProfile =
            serde_json::from_str(json).map_err(|e| MobyError::Json(e.to_string()))?;
        Self::from_doc(&doc)
    }

    /// From the typed document; what moby or runc would refuse is an error.
    pub fn from_doc(doc: &DockerProfile) -> Result<Self, MobyError> {
        let default_action = match doc.default_action {
            Lenient::Known(a) => a,
            Lenient::Other(ref v) => return Err(MobyError::Json(format!("defaultAction {v}"))),
        };
        let rules = doc
            .syscalls
            .iter()
            .enumerate()
            .map(|(i, r)| Self::rule(i, r))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            default_action,
            default_errno: doc.default_errno_ret.unwrap_or(1),
            rules,
        })
    }

    fn rule(i: usize, r: &DockerRule) -> Result<MobyRule, MobyError> {
        let bad = |what: String| MobyError::Rule { rule: i, what };
        let mut names: BTreeSet<String> = match &r.rule.names {
            Some(Lenient::Known(n)) => n.iter().cloned().collect(),
            Some(Lenient::Other(serde_json::Value::Null)) | None => BTreeSet::new(),
            Some(Lenient::Other(v)) => return Err(bad(format!("names {v}"))),
        };
        match &r.name {
            Some(Lenient::Known(n)) if names.is_empty() => {
                names.insert(n.clone());
            }
            Some(Lenient::Known(_)) => return Err(bad("both `name` and `names`".into())),
            Some(Lenient::Other(v)) => return Err(bad(format!("name {v}"))),
            None => {}
        }
        let action = match r.rule.action {
            Lenient::Known(a) => a,
            Lenient::Other(ref v) => return Err(bad(format!("action {v}"))),
        };
        let args = r
            .rule
            .args
            .iter()
            .map(|a| match a.op {
                Lenient::Known(op) => Ok(ArgCmp {
                    index: a.index,
                    op,
                    value: a.value,
                    value_two: a.value_two,
                }),
                Lenient::Other(ref v) => Err(bad(format!("operator {v}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(MobyRule {
            names,
            action,
            errno: r.rule.errno_ret,
            args,
            includes: HostFilter::read(r.includes.as_ref(), i)?,
            excludes: HostFilter::read(r.excludes.as_ref(), i)?,
        })
    }

    /// What the filter dockerd builds in `ctx` does with call `name`. An unconditional rule
    /// decides alone: libseccomp (`db_rule_add`) drops a call's argument rules once it has an
    /// unconditional one, whichever came first, and keeps the first unconditional one.
    /// Otherwise the conditional rules whose action differs from the default one decide for
    /// their argument values (runc leaves out the others, which only repeat the default).
    pub fn outcome(&self, name: &str, ctx: &Context) -> Outcome {
        let kept: Vec<&MobyRule> = self
            .rules
            .iter()
            .filter(|r| r.names.contains(name) && r.applies(ctx))
            .collect();
        let refused = |action: Action, errno: Option<u32>| Outcome::Refused {
            errno: (action == Action::Errno).then_some(errno.unwrap_or(self.default_errno)),
        };
        if let Some(r) = kept.iter().find(|r| r.args.is_empty()) {
            return if allows(r.action) {
                Outcome::Allowed
            } else {
                refused(r.action, r.errno)
            };
        }
        let default_allows = allows(self.default_action);
        let conditions: Vec<Condition> = kept
            .iter()
            .filter(|r| allows(r.action) != default_allows)
            .map(|r| r.args.clone())
            .collect();
        match (default_allows, conditions.is_empty()) {
            (true, true) => Outcome::Allowed,
            (true, false) => Outcome::RefusedWhen(conditions),
            (false, true) => refused(self.default_action, None),
            (false, false) => Outcome::AllowedWhen(conditions),
        }
    }

    /// The calls of `arch`'s table the profile allows with any arguments in `ctx`.
    pub fn allowed_names(&self, arch: Arch, ctx: &Context) -> BTreeSet<&'static str> {
        arch.names()
            .filter(|n| self.outcome(n, ctx) == Outcome::Allowed)
            .collect()
    }
}

#[cfg(test)]
mod tests;
