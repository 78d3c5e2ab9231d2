//! Pure: a set of syscall numbers of one ABI, as read from the kernel's bitmaps.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracer_common::SyscallBits;

use crate::syscalls::Arch;

/// Syscall numbers (of one ABI), ordered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallSet(BTreeSet<u32>);

impl SyscallSet {
    pub fn from_bits(bits: &SyscallBits) -> Self {
        let mut set = BTreeSet::new();
        for (w, &word) in bits.words.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                let b = rest.trailing_zeros();
                set.insert(w as u32 * 64 + b);
                rest &= rest - 1;
            }
        }
        Self(set)
    }

    pub fn insert(&mut self, nr: u32) -> bool {
        self.0.insert(nr)
    }

    pub fn contains(&self, nr: u32) -> bool {
        self.0.contains(&nr)
    }

    pub fn extend(&mut self, other: &SyscallSet) {
        self.0.extend(other.0.iter().copied());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    /// Names in `arch`'s table, sorted, and the numbers the table cannot name.
    pub fn names(&self, arch: Arch) -> (BTreeSet<&'static str>, Vec<u32>) {
        let mut names = BTreeSet::new();
        let mut unknown = Vec::new();
        for nr in self.iter() {
            match arch.name(nr) {
                Some(n) => {
                    names.insert(n);
                }
                None => unknown.push(nr),
            }
        }
        (names, unknown)
    }
}

impl FromIterator<u32> for SyscallSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_to_numbers() {
        let mut bits = SyscallBits::EMPTY;
        for nr in [0u32, 1, 63, 64, 237, 435, 1023] {
            bits.words[(nr / 64) as usize] |= 1 << (nr % 64);
        }
        let set = SyscallSet::from_bits(&bits);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [0, 1, 63, 64, 237, 435, 1023]
        );
    }

    #[test]
    fn names_keep_unknown_numbers() {
        let set: SyscallSet = [0, 237, 999].into_iter().collect();
        let (names, unknown) = set.names(Arch::X86_64);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["mbind", "read"]);
        assert_eq!(unknown, [999]);
    }
}
