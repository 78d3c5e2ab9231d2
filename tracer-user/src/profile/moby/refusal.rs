//! Pure: what a refused call's line says: which profile refused it (the container's own, or
//! Docker's default) and what would allow it with least privilege, from the container's
//! seccomp option and capabilities as `docker inspect` shows them.

use super::{
    caps::cap_add_name, verdict::verdict, CapSet, Context, Host, MobyProfile, Outcome, Verdict,
};
use crate::profile::formats::ENOSYS_FALLBACK;

/// The seccomp profile a container runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeccompInForce {
    /// No `seccomp=` option, or `seccomp=builtin`: Docker's default.
    Default,
    /// `seccomp=unconfined`, or `--privileged`: no filter from Docker.
    Unconfined,
    /// `seccomp=<JSON>` (the CLI sends the file's content): the container's own profile.
    Custom(Box<MobyProfile>),
    /// A `seccomp=` option that cannot be evaluated; why.
    Unreadable(String),
}

/// A container's seccomp profile and capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSecurity {
    pub seccomp: SeccompInForce,
    pub caps: CapSet,
    /// The document of the container's own profile, as the engine holds it (what `export
    /// --heal` starts from).
    pub own_profile: Option<String>,
}

impl ContainerSecurity {
    /// From `HostConfig.SecurityOpt`, `CapAdd`, `CapDrop` and `Privileged`. moby splits an
    /// option at its first `=` (or `:`, the older form); a privileged container gets every
    /// capability and no seccomp filter.
    pub fn from_host_config(
        security_opt: &[String],
        cap_add: &[String],
        cap_drop: &[String],
        privileged: bool,
    ) -> Self {
        let value = security_opt.iter().find_map(|o| {
            let (k, v) = o.split_once(['=', ':'])?;
            (k == "seccomp").then_some(v)
        });
        let seccomp = match value {
            _ if privileged => SeccompInForce::Unconfined,
            None | Some("builtin") => SeccompInForce::Default,
            Some("unconfined") => SeccompInForce::Unconfined,
            Some(json) => match MobyProfile::parse(json) {
                Ok(p) => SeccompInForce::Custom(Box::new(p)),
                Err(e) => SeccompInForce::Unreadable(e.to_string()),
            },
        };
        let own_profile = match &seccomp {
            SeccompInForce::Custom(_) | SeccompInForce::Unreadable(_) => value.map(String::from),
            _ => None,
        };
        Self {
            seccomp,
            caps: CapSet::container(cap_add, cap_drop, privileged),
            own_profile,
        }
    }

    /// From what a CRI runtime installed (its verbose status): the OCI filter (`None`: none),
    /// whether it is a profile of the container's own (Localhost) rather than the runtime's
    /// default, and the capabilities (`None`: the default ones).
    pub fn from_runtime(filter: Option<&str>, own: bool, caps: Option<&[String]>) -> Self {
        let opt = match (filter, own) {
            (None, _) => vec!["seccomp=unconfined".to_string()],
            (Some(doc), true) => vec![format!("seccomp={doc}")],
            (Some(_), false) => Vec::new(),
        };
        let mut s = Self::from_host_config(&opt, &[], &[], false);
        if let Some(caps) = caps {
            s.caps = CapSet::exactly(caps);
        }
        s
    }

    /// A container run with no security options.
    pub fn docker_default() -> Self {
        Self {
            seccomp: SeccompInForce::Default,
            caps: CapSet::docker_default(),
            own_profile: None,
        }
    }
}

/// What Docker's default profile does with call `name` in `ctx` (`None`: allows it), as a
/// clause: "Docker's default profile allows it ...", or with `would`, "Docker's default would
/// allow it ..." (said of a container that runs under another profile).
fn default_says(ctx: &Context, name: &str, would: bool) -> (Option<Verdict>, String) {
    let Ok(default) = MobyProfile::docker_default() else {
        return (None, "Docker's default profile could not be read".into());
    };
    let v = verdict(default, ctx, name, None);
    let (allows, refuses) = if would {
        (
            "Docker's default would allow it",
            "Docker's default would refuse it",
        )
    } else {
        (
            "Docker's default profile allows it",
            "Docker's default profile refuses it",
        )
    };
    let text = match &v {
        None => format!("{allows} with this container's capabilities"),
        Some(Verdict::Capability { capabilities }) => {
            let mut names = capabilities.iter().map(|c| cap_add_name(c));
            let first = names.next().unwrap_or_default();
            let others: Vec<&str> = names.collect();
            let others = if others.is_empty() {
                String::new()
            } else {
                format!("; or {}", others.join(", "))
            };
            format!("{allows} with --cap-add {first} (least privilege{others})")
        }
        Some(Verdict::Never) => format!("{refuses} whatever the capabilities"),
        Some(Verdict::Arguments) => format!("{allows} only for some argument values"),
    };
    (v, text)
}

/// One line for a call refused while recording: which profile refused it and what would
/// allow it. `security` is the container's (`None`: not a container, or not known: Docker's
/// default is assumed), `host` where it runs.
pub fn refusal_hint(name: &str, host: Host, security: Option<&ContainerSecurity>) -> String {
    if ENOSYS_FALLBACK.contains(&name) {
        return "answered with ENOSYS so that libc falls back to clone: harmless; the learned \
                profile does the same and allows clone with the namespace flags seen"
            .into();
    }
    let assumed = ContainerSecurity::docker_default();
    let sec = security.unwrap_or(&assumed);
    let ctx = Context {
        host,
        caps: sec.caps.clone(),
    };
    const OWN: &str = "the container's own profile (--security-opt seccomp)";
    match &sec.seccomp {
        SeccompInForce::Default => match default_says(&ctx, name, false) {
            (None, text) => format!(
                "refused although {text}: by another filter (a daemon-wide --seccomp-profile, or \
                 the program's own); the learned profile allows it"
            ),
            (Some(_), text) => format!("{text}; or use the learned profile"),
        },
        SeccompInForce::Custom(own) => {
            let own_says = match own.outcome(name, &ctx) {
                Outcome::AllowedWhen(_) | Outcome::RefusedWhen(_) => {
                    format!("{OWN} refuses it for some argument values")
                }
                Outcome::Allowed => format!("{OWN} allows it: refused by another filter"),
                Outcome::Refused { .. } => format!("{OWN} refuses it"),
            };
            let (_, default) = default_says(&ctx, name, true);
            format!("{own_says}; {default}; the learned profile allows it")
        }
        SeccompInForce::Unreadable(why) => {
            format!("refused by {OWN}, which cannot be read ({why}); the learned profile allows it")
        }
        SeccompInForce::Unconfined => "the container runs without Docker's seccomp filter \
             (unconfined or privileged): a filter its own program installed refused it"
            .into(),
    }
}
