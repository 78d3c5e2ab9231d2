//! Pure: per-architecture syscall number <-> name tables, and the seccomp architecture names
//! Docker uses for each host.

mod aarch64;
mod i386;
mod x86_64;

/// A syscall ABI whose numbers the tables can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    I386,
}

impl Arch {
    /// The native ABI of the machine this binary runs on.
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::Aarch64),
            _ => None,
        }
    }

    fn table(self) -> &'static [(u32, &'static str)] {
        match self {
            Self::X86_64 => x86_64::TABLE,
            Self::Aarch64 => aarch64::TABLE,
            Self::I386 => i386::TABLE,
        }
    }

    /// Name of syscall `nr`, if the table knows it.
    pub fn name(self, nr: u32) -> Option<&'static str> {
        let t = self.table();
        t.binary_search_by_key(&nr, |&(n, _)| n)
            .ok()
            .map(|i| t[i].1)
    }

    /// The 32-bit ABI a 64-bit task of this architecture can also call (`int 0x80` on
    /// x86_64), when a table names it. arm64's AArch32 calls have no table here.
    pub fn compat(self) -> Option<Self> {
        match self {
            Self::X86_64 => Some(Self::I386),
            Self::Aarch64 | Self::I386 => None,
        }
    }

    /// Every name in the table.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.table().iter().map(|&(_, n)| n)
    }

    /// Number of syscall `name`, if this ABI has it.
    pub fn number(self, name: &str) -> Option<u32> {
        self.table()
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(nr, _)| nr)
    }

    /// The main seccomp architecture and the sub-architectures Docker's default profile lists
    /// for this host (moby `archMap`).
    pub fn docker_arches(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::X86_64 => ("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            Self::Aarch64 => ("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
            Self::I386 => ("SCMP_ARCH_X86", &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::I386] {
            let t = arch.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch:?} not sorted");
        }
    }

    /// libseccomp's `src/syscalls.csv` (tests/reference/libseccomp): test data, not compiled
    /// into the binary.
    const SYSCALLS_CSV: &str = include_str!("../../tests/reference/libseccomp/syscalls.csv");

    /// (name, number) of `column` in the csv, `PNR` ("pseudo syscall, not resolvable") left out.
    fn csv_column(column: &str) -> Vec<(String, u32)> {
        let mut lines = SYSCALLS_CSV.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == column).unwrap();
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[col] != "PNR")
            .map(|f| (f[0].to_string(), f[col].parse().unwrap()))
            .collect()
    }

    #[test]
    fn tables_are_libseccomps_both_ways() {
        for (arch, column) in [
            (Arch::X86_64, "x86_64"),
            (Arch::Aarch64, "aarch64"),
            (Arch::I386, "x86"),
        ] {
            let csv = csv_column(column);
            assert!(csv.len() > 300, "{column}: {} rows", csv.len());
            for (name, nr) in &csv {
                assert_eq!(arch.number(name), Some(*nr), "{arch:?}: {name}");
            }
            for &(nr, name) in arch.table() {
                assert!(
                    csv.iter().any(|(n, c)| n == name && *c == nr),
                    "{arch:?}: {nr} {name} is not in libseccomp's table"
                );
            }
        }
    }

    #[test]
    fn known_numbers() {
        assert_eq!(Arch::X86_64.name(0), Some("read"));
        assert_eq!(Arch::X86_64.name(237), Some("mbind"));
        assert_eq!(Arch::X86_64.name(435), Some("clone3"));
        assert_eq!(Arch::X86_64.name(452), Some("fchmodat2"));
        assert_eq!(Arch::Aarch64.name(63), Some("read"));
        assert_eq!(Arch::Aarch64.name(235), Some("mbind"));
        assert_eq!(Arch::Aarch64.name(79), Some("newfstatat"));
        // Behind `__ARCH_WANT_TIME32_SYSCALLS || __BITS_PER_LONG != 32` in the generic header.
        assert_eq!(Arch::Aarch64.name(98), Some("futex"));
        assert_eq!(Arch::Aarch64.name(260), Some("wait4"));
        assert_eq!(Arch::Aarch64.name(113), Some("clock_gettime"));
        assert_eq!(Arch::I386.name(11), Some("execve"));
        assert_eq!(Arch::X86_64.number("getppid"), Some(110));
        assert_eq!(Arch::Aarch64.number("open"), None, "arm64 has only openat");
        assert_eq!(Arch::X86_64.name(1000), None);
        assert_eq!(Arch::X86_64.name(335), Some("uretprobe"));
        assert_eq!(Arch::X86_64.name(336), Some("uprobe"));
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::I386] {
            assert_eq!(arch.name(470), Some("listns"));
            assert_eq!(arch.name(471), Some("rseq_slice_yield"));
        }
        // A placeholder of the generic header (__NR_arch_specific_syscall), not a call.
        assert_eq!(Arch::Aarch64.name(244), None);
    }
}
