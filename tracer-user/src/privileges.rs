//! Checks, before anything else, that this process may load and attach BPF programs.

use thiserror::Error;

#[derive(Debug, Error)]
#[error(
    "seccomp-tracer needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE): run it with sudo"
)]
pub struct NotPrivileged;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capabilities from a `/proc/self/status` text.
pub fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

pub fn can_trace(caps: u64) -> bool {
    let has = |c: u32| caps & (1 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

pub fn check() -> Result<(), NotPrivileged> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match effective_caps(&status) {
        Some(caps) if can_trace(caps) => Ok(()),
        _ => Err(NotPrivileged),
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
}
