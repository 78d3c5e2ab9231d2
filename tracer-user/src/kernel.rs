//! The seam in front of every side effect the session has on the host: the kernel maps
//! ([`Kernel`], implemented by [`Tracer`]) and cgroupfs ([`Cgroups`], implemented by
//! [`HostCgroups`]). The session's logic (adopting, folding, provisional expiry, following
//! restarts and re-creation) goes through these two traits only, so it is unit-tested with the
//! fakes below, without root.

use std::path::{Path, PathBuf};

use tracer_common::{ArgKey, CgroupRecord};

use crate::{
    bpf::{BpfError, Counters, Tracer},
    profile::Learned,
    target::{
        cgroup::{self, CgroupId},
        TargetError,
    },
};

/// The kernel programs' maps, as the session uses them.
pub trait Kernel {
    /// What the kernel recorded for cgroup `id`, if it is traced.
    fn record(&self, id: u64) -> Result<Option<CgroupRecord>, BpfError>;
    /// The argument values recorded for the cgroups `ids`.
    fn args(&self, ids: &[u64]) -> Result<Vec<ArgKey>, BpfError>;
    /// Every cgroup in the kernel's target map.
    fn cgroups(&self) -> Result<Vec<u64>, BpfError>;
    /// Starts tracing cgroup `id` (keeps what it recorded if traced already).
    fn add_cgroup(&mut self, id: u64) -> Result<(), BpfError>;
    /// Stops tracing cgroup `id` and forgets what the kernel recorded for it.
    fn remove_cgroup(&mut self, id: u64) -> Result<(), BpfError>;
    /// Adopts cgroup `path` whenever it is created; `tag` comes back in the ADOPTED event.
    fn watch(&mut self, path: &str, tag: u32) -> Result<(), BpfError>;
    fn unwatch(&mut self, path: &str) -> Result<(), BpfError>;
    /// Adopts provisionally every cgroup created under `parent`; false when no slot is free.
    fn watch_parent(&mut self, parent: &str) -> Result<bool, BpfError>;
    /// The parents watched with [`watch_parent`](Self::watch_parent).
    fn parents(&self) -> Vec<String>;
    fn counters(&self) -> Result<Counters, BpfError>;
    /// Whether the syscall programs are attached.
    fn hooked(&self) -> bool;
    fn set_hooks(&mut self, on: bool) -> Result<(), BpfError>;

    /// What the kernel recorded for cgroup `id`, with its argument values.
    fn learned(&self, id: u64) -> Result<Option<Learned>, BpfError> {
        match self.record(id)? {
            Some(r) => Ok(Some(Learned::from_kernel(&r, self.args(&[id])?))),
            None => Ok(None),
        }
    }
}

impl Kernel for Tracer {
    fn record(&self, id: u64) -> Result<Option<CgroupRecord>, BpfError> {
        Tracer::record(self, id)
    }
    fn args(&self, ids: &[u64]) -> Result<Vec<ArgKey>, BpfError> {
        Tracer::args(self, ids)
    }
    fn cgroups(&self) -> Result<Vec<u64>, BpfError> {
        Tracer::cgroups(self)
    }
    fn add_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        Tracer::add_cgroup(self, id)
    }
    fn remove_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
        Tracer::remove_cgroup(self, id)
    }
    fn watch(&mut self, path: &str, tag: u32) -> Result<(), BpfError> {
        Tracer::watch(self, path, tag)
    }
    fn unwatch(&mut self, path: &str) -> Result<(), BpfError> {
        Tracer::unwatch(self, path)
    }
    fn watch_parent(&mut self, parent: &str) -> Result<bool, BpfError> {
        Tracer::watch_parent(self, parent)
    }
    fn parents(&self) -> Vec<String> {
        Tracer::parents(self).to_vec()
    }
    fn counters(&self) -> Result<Counters, BpfError> {
        Tracer::counters(self)
    }
    fn hooked(&self) -> bool {
        Tracer::hooked(self)
    }
    fn set_hooks(&mut self, on: bool) -> Result<(), BpfError> {
        Tracer::set_hooks(self, on)
    }
}

/// The cgroup2 hierarchy, as the session uses it. Paths are relative to its root
/// (`/docker/<id>`).
pub trait Cgroups {
    /// The id of the cgroup at `path`.
    fn id_of(&self, path: &str) -> Result<CgroupId, TargetError>;
    /// Whether no process is in the cgroup at `path` or below it.
    fn is_empty(&self, path: &str) -> bool;
    /// The name of the child of `parent` whose id is `id`.
    fn child_named(&self, parent: &str, id: u64) -> Option<String>;
    /// The cgroup2 path of process `pid`.
    fn pid_path(&self, pid: u32) -> Result<String, TargetError>;
    /// A user-given cgroup path (absolute under the mount point, or relative to it),
    /// normalized.
    fn relative(&self, given: &str) -> String;
}

/// The host's cgroup2 hierarchy, mounted at `root`.
pub struct HostCgroups {
    root: PathBuf,
}

impl HostCgroups {
    /// The hierarchy where this host mounts cgroup2.
    pub fn discover() -> Result<Self, TargetError> {
        Ok(Self::at(cgroup::cgroup2_root()?))
    }

    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Cgroups for HostCgroups {
    fn id_of(&self, path: &str) -> Result<CgroupId, TargetError> {
        cgroup::id_of(&self.root, path)
    }
    fn is_empty(&self, path: &str) -> bool {
        cgroup::is_empty(&self.root, path)
    }
    fn child_named(&self, parent: &str, id: u64) -> Option<String> {
        use std::os::unix::fs::DirEntryExt;
        let dir = self.root.join(parent.trim_start_matches('/'));
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .find(|e| e.ino() == id)
            .map(|e| e.file_name().to_string_lossy().into_owned())
    }
    fn pid_path(&self, pid: u32) -> Result<String, TargetError> {
        cgroup::pid_path(pid)
    }
    fn relative(&self, given: &str) -> String {
        cgroup::relative_path(&self.root, given)
    }
}

/// In-memory kernel maps and cgroup tree for unit tests of the session's logic.
#[cfg(test)]
pub mod fake {
    use std::collections::{BTreeMap, HashMap};

    use tracer_common::{ArgKey, CgroupRecord};

    use super::{Cgroups, Kernel};
    use crate::{
        bpf::{BpfError, Counters},
        target::{cgroup::CgroupId, TargetError},
    };

    /// The kernel's maps: TARGETS, ARGS, WATCH and the watched parents.
    #[derive(Default)]
    pub struct FakeKernel {
        pub targets: BTreeMap<u64, CgroupRecord>,
        pub args: Vec<ArgKey>,
        pub watches: BTreeMap<String, u32>,
        pub parents: Vec<String>,
        pub hooked: bool,
        /// Calls `add_cgroup` refuses from now on (a full map).
        pub full: bool,
    }

    impl FakeKernel {
        /// Marks native call `nr` as made under a filter by cgroup `id`, as the kernel would.
        pub fn call(&mut self, id: u64, nr: u32) {
            let r = self.targets.get_mut(&id).expect("traced cgroup");
            r.native.allowed.words[(nr / 64) as usize] |= 1 << (nr % 64);
        }

        /// Marks native call `nr` as refused for cgroup `id`.
        pub fn refuse(&mut self, id: u64, nr: u32) {
            let r = self.targets.get_mut(&id).expect("traced cgroup");
            r.native.refused.words[(nr / 64) as usize] |= 1 << (nr % 64);
        }

        /// The kernel adopts `id` on its own (a watched path or parent).
        pub fn adopt(&mut self, id: u64) {
            self.targets.entry(id).or_insert(CgroupRecord::EMPTY);
        }
    }

    impl Kernel for FakeKernel {
        fn record(&self, id: u64) -> Result<Option<CgroupRecord>, BpfError> {
            Ok(self.targets.get(&id).copied())
        }
        fn args(&self, ids: &[u64]) -> Result<Vec<ArgKey>, BpfError> {
            Ok(self
                .args
                .iter()
                .filter(|k| ids.contains(&k.cgroup_id))
                .copied()
                .collect())
        }
        fn cgroups(&self) -> Result<Vec<u64>, BpfError> {
            Ok(self.targets.keys().copied().collect())
        }
        fn add_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
            if self.full && !self.targets.contains_key(&id) {
                return Err(BpfError::Map {
                    map: "TARGETS",
                    detail: "map full".into(),
                });
            }
            self.adopt(id);
            Ok(())
        }
        fn remove_cgroup(&mut self, id: u64) -> Result<(), BpfError> {
            self.targets.remove(&id);
            self.args.retain(|k| k.cgroup_id != id);
            Ok(())
        }
        fn watch(&mut self, path: &str, tag: u32) -> Result<(), BpfError> {
            self.watches.insert(path.to_string(), tag);
            Ok(())
        }
        fn unwatch(&mut self, path: &str) -> Result<(), BpfError> {
            self.watches.remove(path);
            Ok(())
        }
        fn watch_parent(&mut self, parent: &str) -> Result<bool, BpfError> {
            if !self.parents.iter().any(|p| p == parent) {
                self.parents.push(parent.to_string());
            }
            Ok(true)
        }
        fn parents(&self) -> Vec<String> {
            self.parents.clone()
        }
        fn counters(&self) -> Result<Counters, BpfError> {
            Ok(Counters::default())
        }
        fn hooked(&self) -> bool {
            self.hooked
        }
        fn set_hooks(&mut self, on: bool) -> Result<(), BpfError> {
            self.hooked = on;
            Ok(())
        }
    }

    /// A cgroup tree: path -> (id, populated).
    #[derive(Default)]
    pub struct FakeCgroups {
        pub dirs: HashMap<String, (u64, bool)>,
        pub pids: HashMap<u32, String>,
    }

    impl FakeCgroups {
        /// Creates cgroup `path` with id `id`, with processes in it or not.
        pub fn mkdir(&mut self, path: &str, id: u64, populated: bool) {
            self.dirs.insert(path.to_string(), (id, populated));
        }

        pub fn rmdir(&mut self, path: &str) {
            self.dirs.remove(path);
        }
    }

    impl Cgroups for FakeCgroups {
        fn id_of(&self, path: &str) -> Result<CgroupId, TargetError> {
            self.dirs
                .get(path)
                .map(|&(id, _)| CgroupId(id))
                .ok_or_else(|| TargetError::NoCgroup(path.into()))
        }
        fn is_empty(&self, path: &str) -> bool {
            self.dirs
                .get(path)
                .is_some_and(|&(_, populated)| !populated)
        }
        fn child_named(&self, parent: &str, id: u64) -> Option<String> {
            self.dirs.iter().find_map(|(p, &(i, _))| {
                let (dir, leaf) = p.rsplit_once('/')?;
                (i == id && dir == parent).then(|| leaf.to_string())
            })
        }
        fn pid_path(&self, pid: u32) -> Result<String, TargetError> {
            self.pids.get(&pid).cloned().ok_or(TargetError::NoPid(pid))
        }
        fn relative(&self, given: &str) -> String {
            let s = given.trim_end_matches('/');
            if s.starts_with('/') {
                s.to_string()
            } else {
                format!("/{s}")
            }
        }
    }
}
