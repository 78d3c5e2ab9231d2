//! The live display: one timestamped line per first sighting, refusal or change of instance,
//! and how calls are named on it. Writing to a terminal that went away (an SSH hang-up,
//! `| head`) is never an error: the recording goes on and the profile is still written.

use std::{
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

use crate::{profile::Learned, report, syscalls::Arch};

/// Live lines go to standard error instead (`--json`: standard output takes the summary
/// alone).
static LIVE_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends the live lines to standard error from now on.
pub fn live_to_stderr() {
    LIVE_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Prints `line` with the time of day; output errors are ignored.
pub fn say(line: &str) {
    let line = format!("{} {line}\n", report::clock(SystemTime::now()));
    if LIVE_TO_STDERR.load(Ordering::Relaxed) {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Prints `text` as it is (a summary); output errors are ignored.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a warning on standard error; output errors are ignored.
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "seccomp-tracer: {line}");
}

/// Prints `line` on standard error as it is; output errors are ignored.
pub fn warn_plain(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// How call `nr` (of the compat ABI if `compat`) is shown live.
pub fn call_name(arch: Arch, nr: u32, compat: bool) -> String {
    let table = if compat { arch.compat() } else { Some(arch) };
    match (table.and_then(|a| a.name(nr)), compat) {
        (Some(n), false) => n.to_string(),
        (Some(n), true) => format!("{n} (32-bit)"),
        (None, false) => format!("syscall #{nr} (no name in the table)"),
        (None, true) => format!("32-bit syscall #{nr} (no name in the table)"),
    }
}

/// A call's name, or `#nr` without one (status's "last new" column).
pub fn short_name(name: Option<&'static str>, nr: u32) -> String {
    name.map_or_else(|| format!("#{nr}"), String::from)
}

/// Names of the calls the current filter refused, both ABIs, sorted and unique.
pub fn refused_names(arch: Arch, l: &Learned) -> Vec<&'static str> {
    let compat = arch.compat();
    let mut v: Vec<&'static str> = l
        .native
        .refused
        .iter()
        .filter_map(|nr| arch.name(nr))
        .chain(
            l.compat
                .refused
                .iter()
                .filter_map(|nr| compat.and_then(|a| a.name(nr))),
        )
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether `sig` is ignored (SIG_IGN) in this process, as `nohup` leaves SIGHUP: the
/// display's terminal may go away, and the session must not end with it.
pub fn signal_ignored(sig: libc::c_int) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_from_their_abis_table() {
        assert_eq!(call_name(Arch::X86_64, 0, false), "read");
        assert_eq!(call_name(Arch::X86_64, 1, true), "exit (32-bit)");
        assert!(call_name(Arch::X86_64, 4000, false).contains("#4000"));
        assert!(call_name(Arch::X86_64, 4000, true).starts_with("32-bit syscall #4000"));
        assert_eq!(short_name(None, 7), "#7");
        assert_eq!(short_name(Some("read"), 0), "read");
    }

    #[test]
    fn refused_names_are_sorted_unique_across_abis() {
        let mut l = Learned::default();
        l.native
            .refused
            .insert(Arch::X86_64.number("mbind").unwrap());
        l.native.refused.insert(Arch::X86_64.number("bpf").unwrap());
        l.compat.refused.insert(Arch::I386.number("bpf").unwrap());
        assert_eq!(refused_names(Arch::X86_64, &l), ["bpf", "mbind"]);
    }
}
