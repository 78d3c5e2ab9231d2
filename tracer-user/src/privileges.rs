//! Checks, before anything else, that this process may load and attach BPF programs: a kernel
//! recent enough for them, and the capabilities to load them.

use std::fmt;

use thiserror::Error;

/// Why this process cannot trace.
#[derive(Debug, Error)]
pub enum CannotTrace {
    #[error("seccomp-tracer needs root (or CAP_BPF and CAP_PERFMON): run it with sudo")]
    NotPrivileged,
    #[error(
        "Linux {release} is too old: seccomp-tracer needs Linux {MIN_KERNEL} or later \
         (BPF links for perf events 5.15, atomic fetch-or 5.12, bpf_get_current_task_btf 5.11)"
    )]
    KernelTooOld { release: String },
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// A kernel's major and minor version (`6.18` of `6.18.0-rc1`); ordered as versions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest kernel the programs load on: the newest of what they use, a BPF link attaching
/// a perf-event program (pinned so that the daemon survives a restart).
pub const MIN_KERNEL: KernelVersion = KernelVersion {
    major: 5,
    minor: 15,
};

/// The version at the start of a kernel release (`uname -r`): `5.15.0-91-generic` is 5.15.
/// `None` when it does not start with `MAJOR.MINOR`.
pub fn parse_release(release: &str) -> Option<KernelVersion> {
    let mut parts = release.splitn(3, '.');
    let major = parts.next()?;
    let minor = parts.next()?;
    // The minor version ends where the digits do (`15-rc1`, `18+`).
    let end = minor
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(minor.len());
    let minor = &minor[..end];
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some(KernelVersion {
        major: number(major)?,
        minor: number(minor)?,
    })
}

/// Whether the kernel of release `release` can run the programs. A release that does not
/// parse is let through: Linux always writes `MAJOR.MINOR...`, so it is an odd build (or a
/// test double), and loading the programs still fails with the verifier's own error if the
/// kernel is too old.
pub fn kernel_supported(release: &str) -> bool {
    parse_release(release).is_none_or(|v| v >= MIN_KERNEL)
}

/// The running kernel's version, if its release parses.
pub fn running_kernel() -> Option<KernelVersion> {
    kernel_release().as_deref().and_then(parse_release)
}

/// The running kernel's release, as `uname -r` prints it.
fn kernel_release() -> Option<String> {
    // SAFETY: utsname is plain data (arrays of c_char); all zeroes is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname(2) writes into the struct we own and pass by a valid pointer.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Effective capabilities from a `/proc/self/status` text.
pub fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

pub fn can_trace(caps: u64) -> bool {
    let has = |c: u32| caps & (1 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// The kernel first (no capability makes an old one work), then the capabilities.
pub fn check() -> Result<(), CannotTrace> {
    if let Some(release) = kernel_release() {
        if !kernel_supported(&release) {
            return Err(CannotTrace::KernelTooOld { release });
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match effective_caps(&status) {
        Some(caps) if can_trace(caps) => Ok(()),
        _ => Err(CannotTrace::NotPrivileged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        assert_eq!(
            effective_caps("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
        assert!(can_trace(0x1ff_ffff_ffff));
        assert!(!can_trace(0));
        assert!(can_trace(1 << 39 | 1 << 38));
        assert!(!can_trace(1 << 39));
    }

    #[test]
    fn kernel_releases() {
        let v = |major, minor| Some(KernelVersion { major, minor });
        assert_eq!(parse_release("6.18.0-rc1"), v(6, 18));
        assert_eq!(parse_release("5.15.0-91-generic"), v(5, 15));
        assert_eq!(parse_release("4.19.0"), v(4, 19));
        assert_eq!(parse_release("6.1"), v(6, 1));
        assert_eq!(parse_release("5.15-rc1"), v(5, 15));
        assert_eq!(parse_release("6.18+"), v(6, 18));
        assert_eq!(parse_release("2.6.78-fc-v782"), v(2, 6));
        for garbage in [
            "",
            "6",
            "6.",
            ".15",
            "x.y",
            "6.x",
            "-5.15",
            "5.-15",
            "99999999999.1",
        ] {
            assert_eq!(parse_release(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn kernels_older_than_5_15_are_refused() {
        for ok in ["6.18.0-rc1", "5.15.0-91-generic", "5.15", "10.0.0", "6.1.0"] {
            assert!(kernel_supported(ok), "{ok}");
        }
        for old in [
            "4.19.0",
            "5.14.21-150400.24-default",
            "5.8.0",
            "2.6.78-fc-v782",
        ] {
            assert!(!kernel_supported(old), "{old}");
        }
        // Garbage is let through (the programs' load still fails on an old kernel).
        assert!(kernel_supported("linux"));
        let e = CannotTrace::KernelTooOld {
            release: "4.19.0".into(),
        };
        assert_eq!(
            e.to_string(),
            "Linux 4.19.0 is too old: seccomp-tracer needs Linux 5.15 or later (BPF links for \
             perf events 5.15, atomic fetch-or 5.12, bpf_get_current_task_btf 5.11)"
        );
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn the_running_kernel_has_a_release() {
        let release = kernel_release().expect("uname");
        assert!(parse_release(&release).is_some(), "{release}");
    }
}
