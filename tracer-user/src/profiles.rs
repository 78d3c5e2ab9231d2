//! `merge`, `diff` and `explain`: reading profile files of any format and reporting on them.
//! The logic is in `profile::formats` and `profile::advice`; this file does the file I/O.

use std::{collections::BTreeSet, path::Path};

use thiserror::Error;

use crate::{
    profile::{
        advice::{docker_default, docker_default_allows, docker_default_covers},
        args::describe,
        formats::{self, Format, Profile},
    },
    syscalls::Arch,
};

#[derive(Debug, Error)]
pub enum ProfileFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: String,
        source: formats::FormatError,
    },
}

pub fn load(path: &Path) -> Result<(Format, Profile), ProfileFileError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProfileFileError::Read {
        path: p.clone(),
        source,
    })?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ProfileFileError::Json {
            path: p.clone(),
            source,
        })?;
    formats::parse(&doc).map_err(|source| ProfileFileError::Format { path: p, source })
}

fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// A call's rule in words: `any arguments`, or its conditions.
fn rule_of(p: &Profile, name: &str) -> String {
    match p.conditions.get(name) {
        Some(c) => format!("only {}", describe(name, c)),
        None => "any arguments".into(),
    }
}

/// What one profile allows that the other does not, argument rules included.
pub fn diff(a: &Profile, b: &Profile, a_name: &str, b_name: &str) -> String {
    let only_a: Vec<&String> = a.allowed.difference(&b.allowed).collect();
    let only_b: Vec<&String> = b.allowed.difference(&a.allowed).collect();
    let differ: Vec<&String> = a
        .allowed
        .intersection(&b.allowed)
        .filter(|n| a.conditions.get(*n) != b.conditions.get(*n))
        .collect();
    if only_a.is_empty() && only_b.is_empty() && differ.is_empty() {
        return format!(
            "{a_name} and {b_name} allow the same {} syscalls\n",
            a.allowed.len()
        );
    }
    let mut out = format!(
        "only {a_name} allows ({}): {}\nonly {b_name} allows ({}): {}\n",
        only_a.len(),
        list(&only_a),
        only_b.len(),
        list(&only_b)
    );
    if !differ.is_empty() {
        out.push_str("allowed by both with different argument rules:\n");
        for n in differ {
            out.push_str(&format!(
                "  {n}: {a_name}: {}; {b_name}: {}\n",
                rule_of(a, n),
                rule_of(b, n)
            ));
        }
    }
    out
}

/// A profile against Docker's default: what it allows beyond it, why the default refuses
/// those and the capability that would allow them, its argument rules, counts, and what was
/// refused while recording.
pub fn explain(p: &Profile, arch: Arch, name: &str) -> String {
    let default = docker_default_allows(arch);
    let mut out = format!(
        "{name}: {} syscalls allowed; Docker's default allows {} unconditionally on {arch:?}\n",
        p.allowed.len(),
        default.len()
    );
    let no_conditions = Default::default();
    let beyond: Vec<&String> = p
        .allowed
        .iter()
        .filter(|n| !docker_default_covers(n, p.conditions.get(*n).unwrap_or(&no_conditions)))
        .collect();
    if beyond.is_empty() {
        out.push_str("everything it allows, Docker's default allows too\n");
    } else {
        out.push_str("allowed here, refused by Docker's default:\n");
        for n in beyond {
            let Some(adv) = docker_default(n) else {
                continue;
            };
            let fix = match adv.capability {
                Some(cap) => format!("Docker's default allows it with --cap-add {cap}"),
                None => "no capability makes Docker's default allow it".into(),
            };
            let rule = match p.conditions.get(n) {
                Some(c) => format!(" (only {})", describe(n, c)),
                None => String::new(),
            };
            out.push_str(&format!("  {n}{rule}: {}; {fix}\n", adv.reason));
        }
    }
    if !p.conditions.is_empty() {
        out.push_str("argument rules (allowed only with the values seen):\n");
        for (n, c) in &p.conditions {
            out.push_str(&format!("  {n}: {}\n", describe(n, c)));
        }
    }
    let narrower: BTreeSet<&str> = default
        .iter()
        .copied()
        .filter(|n| !p.allowed.contains(*n))
        .collect();
    out.push_str(&format!(
        "refused here, allowed by Docker's default: {} syscalls\n",
        narrower.len()
    ));
    out.push_str(&format!(
        "refused while recording (and allowed here): {}\n",
        list(&p.refused)
    ));
    if p.complain {
        out.push_str("complain mode: calls not allowed are logged (SCMP_ACT_LOG), not refused\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(names: &[&str]) -> Profile {
        Profile {
            allowed: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn diff_both_ways() {
        let d = diff(&p(&["read", "mbind"]), &p(&["read", "write"]), "a", "b");
        assert_eq!(d, "only a allows (1): mbind\nonly b allows (1): write\n");
        assert!(diff(&p(&["read"]), &p(&["read"]), "a", "b").contains("the same 1"));
    }

    #[test]
    fn explain_names_the_capability() {
        let mut prof = p(&["read", "mbind", "keyctl"]);
        prof.refused.insert("mbind".into());
        let e = explain(&prof, Arch::X86_64, "db.json");
        assert!(e.contains("mbind: modifies kernel memory and NUMA settings; Docker's default allows it with --cap-add SYS_NICE"), "{e}");
        assert!(
            e.contains("keyctl: the kernel keyring is not namespaced; no capability"),
            "{e}"
        );
        assert!(
            e.contains("refused while recording (and allowed here): mbind"),
            "{e}"
        );
        let n = docker_default_allows(Arch::X86_64).len();
        assert!(n > 250 && n < 400, "{n}");
    }

    fn with_rule(names: &[&str], call: &str, value: u64) -> Profile {
        let mut prof = p(names);
        let c = crate::profile::args::condition(
            crate::profile::args::arg_call_of(call).unwrap(),
            value,
        );
        prof.conditions
            .insert(call.into(), [c].into_iter().collect());
        prof
    }

    #[test]
    fn diff_reports_argument_rules() {
        let a = with_rule(&["read", "socket"], "socket", 1);
        let b = p(&["read", "socket"]);
        let d = diff(&a, &b, "a", "b");
        assert!(
            d.contains("  socket: a: only AF_UNIX; b: any arguments"),
            "{d}"
        );
        assert!(diff(&a, &a, "a", "b").contains("the same 2"));
    }

    #[test]
    fn explain_knows_dockers_argument_rules() {
        // clone without namespace flags is within Docker's default; with one it is not.
        let e = explain(&with_rule(&["clone"], "clone", 0), Arch::X86_64, "x");
        assert!(
            e.contains("everything it allows, Docker's default allows too"),
            "{e}"
        );
        assert!(e.contains("  clone: no namespace flag"), "{e}");
        let e = explain(
            &with_rule(&["unshare"], "unshare", 0x0400_0000),
            Arch::X86_64,
            "x",
        );
        assert!(
            e.contains("  unshare (only CLONE_NEWUTS): creates or joins namespaces; Docker's default allows it with --cap-add SYS_ADMIN"),
            "{e}"
        );
    }
}
