//! Pure: a Docker (moby) seccomp profile document, as `docker run --security-opt seccomp=FILE`
//! takes it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::syscalls::Arch;

/// errno for everything not allowed; Docker's own default (EPERM).
pub const DEFAULT_ERRNO: u32 = 1;
const ENOSYS: u32 = 38;

/// Calls that must fail with ENOSYS rather than EPERM when not allowed, because libc falls back
/// to an older call only on ENOSYS (glibc's pthread_create uses clone3, then clone).
pub const ENOSYS_FALLBACK: &[&str] = &["clone3"];

/// The profile: refuse everything with EPERM except `allowed`.
pub fn profile(arch: Arch, allowed: &BTreeSet<&str>) -> Value {
    let (main, subs) = arch.docker_arches();
    let mut rules = vec![json!({
        "names": allowed.iter().collect::<Vec<_>>(),
        "action": "SCMP_ACT_ALLOW",
    })];
    let fallbacks: Vec<&str> = ENOSYS_FALLBACK
        .iter()
        .copied()
        .filter(|n| !allowed.contains(n) && arch.number(n).is_some())
        .collect();
    if !fallbacks.is_empty() {
        rules.push(json!({
            "names": fallbacks,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": DEFAULT_ERRNO,
        "archMap": [{ "architecture": main, "subArchitectures": subs }],
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_sorted_names_and_refuses_the_rest() {
        let allowed: BTreeSet<&str> = ["write", "read", "exit_group"].into_iter().collect();
        let p = profile(Arch::X86_64, &allowed);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        assert_eq!(p["archMap"][0]["architecture"], "SCMP_ARCH_X86_64");
        assert_eq!(
            p["archMap"][0]["subArchitectures"],
            json!(["SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(
            p["syscalls"][0]["names"],
            json!(["exit_group", "read", "write"])
        );
        assert_eq!(p["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn clone3_is_enosys_unless_allowed() {
        let p = profile(Arch::X86_64, &["read"].into_iter().collect());
        assert_eq!(p["syscalls"][1]["names"], json!(["clone3"]));
        assert_eq!(p["syscalls"][1]["errnoRet"], 38);
        let p = profile(Arch::X86_64, &["clone3"].into_iter().collect());
        assert_eq!(p["syscalls"].as_array().unwrap().len(), 1);
    }
}
