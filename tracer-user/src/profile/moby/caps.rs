//! Pure: Linux capabilities as Docker names and grants them: the default set a container gets,
//! `--cap-add`/`--cap-drop`/`--privileged`, and every capability ordered least privilege first.

use std::collections::BTreeSet;

/// The capabilities Docker gives a container by default: moby `oci/caps/defaults.go`
/// (`DefaultCapabilities`), unchanged since Docker 20.10.
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability (`linux/capability.h`, 0 to 40), least privilege first: the ones confined
/// to one subsystem (a clock, the kernel log, perf, BPF) before the ones over files and
/// identities, then those known to amount to root (`CAP_SYS_PTRACE`, `CAP_SYS_RAWIO`,
/// `CAP_SYS_MODULE`), and `CAP_SYS_ADMIN`, which amounts to everything, last. When several
/// make a call allowed, advice names the first: `bpf` takes `CAP_BPF` before `CAP_SYS_ADMIN`.
pub const LEAST_PRIVILEGE_FIRST: [&str; 41] = [
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_WAKE_ALARM",
    "CAP_LEASE",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_IPC_LOCK",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYS_PACCT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYSLOG",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_CHOWN",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_LINUX_IMMUTABLE",
    "CAP_IPC_OWNER",
    "CAP_DAC_READ_SEARCH",
    "CAP_DAC_OVERRIDE",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_NET_ADMIN",
    "CAP_AUDIT_CONTROL",
    "CAP_SYS_BOOT",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_MODULE",
    "CAP_SYS_ADMIN",
];

/// `sys_nice` or `SYS_NICE` as Docker reads it: `CAP_SYS_NICE` (moby
/// `NormalizeLegacyCapabilities`); `ALL` stays `ALL`.
pub fn normalize_cap(cap: &str) -> String {
    let up = cap.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// How `docker run --cap-add` is given `cap`: without its `CAP_` prefix.
pub fn cap_add_name(cap: &str) -> &str {
    cap.strip_prefix("CAP_").unwrap_or(cap)
}

/// A container's capabilities (its bounding set, which moby's `includes.caps` tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapSet(BTreeSet<String>);

impl CapSet {
    /// What `docker run` gives without capability options.
    pub fn docker_default() -> Self {
        Self(DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect())
    }

    /// Every capability (`--privileged`, or `--cap-add ALL`).
    pub fn all() -> Self {
        Self(
            LEAST_PRIVILEGE_FIRST
                .iter()
                .map(|c| c.to_string())
                .collect(),
        )
    }

    /// The set moby gives a container (`TweakCapabilities`): privileged, every one; `ALL` in
    /// `cap_add`, every one but those dropped; `ALL` in `cap_drop`, only those added; else the
    /// defaults less those dropped, then those added (an added one wins over its drop).
    pub fn container(cap_add: &[String], cap_drop: &[String], privileged: bool) -> Self {
        if privileged {
            return Self::all();
        }
        let add: BTreeSet<String> = cap_add.iter().map(|c| normalize_cap(c)).collect();
        let drop: BTreeSet<String> = cap_drop.iter().map(|c| normalize_cap(c)).collect();
        let kept = |set: Self| -> BTreeSet<String> {
            set.0.into_iter().filter(|c| !drop.contains(c)).collect()
        };
        Self(if add.contains("ALL") {
            kept(Self::all())
        } else if drop.contains("ALL") {
            add
        } else {
            let mut set = kept(Self::docker_default());
            set.extend(add);
            set
        })
    }

    /// Exactly `caps` (as a runtime's spec lists them).
    pub fn exactly(caps: &[String]) -> Self {
        Self(caps.iter().map(|c| normalize_cap(c)).collect())
    }

    pub fn has(&self, cap: &str) -> bool {
        self.0.contains(cap)
    }

    /// The same with `cap` added.
    pub fn with(&self, cap: &str) -> Self {
        let mut s = self.0.clone();
        s.insert(cap.to_string());
        Self(s)
    }
}
