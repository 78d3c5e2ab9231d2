//! Finding cgroups on the host: where cgroup2 is mounted (pure cgroup2 or hybrid), which cgroup a
//! process is in, and a cgroup's id (the inode number of its directory, which is what
//! `bpf_get_current_cgroup_id()` returns).

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::TargetError;

/// A cgroup v2 id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CgroupId(pub u64);

/// Mount point of the cgroup2 hierarchy in a `/proc/self/mountinfo` text.
pub fn parse_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The cgroup2 path (`0::/docker/<id>`) in a `/proc/PID/cgroup` text.
pub fn parse_v2_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// The cgroup2 mount point of this host.
pub fn cgroup2_root() -> Result<PathBuf, TargetError> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| TargetError::Cgroup(format!("reading /proc/self/mountinfo: {e}")))?;
    parse_cgroup2_mount(&info)
        .ok_or_else(|| TargetError::Cgroup("no cgroup2 hierarchy is mounted on this host".into()))
}

/// The cgroup2 path of process `pid`.
pub fn pid_path(pid: u32) -> Result<String, TargetError> {
    let text =
        fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|_| TargetError::NoPid(pid))?;
    parse_v2_path(&text)
        .ok_or_else(|| TargetError::Cgroup(format!("process {pid} is in no cgroup2 cgroup")))
}

/// Normalizes a user-given cgroup: absolute under the mount point, or relative to it.
pub fn relative_path(root: &Path, given: &str) -> String {
    let p = Path::new(given);
    let rel = p.strip_prefix(root).unwrap_or(p);
    let s = rel.to_string_lossy();
    let s = s.trim_end_matches('/');
    if s.starts_with('/') {
        s.to_string()
    } else {
        format!("/{s}")
    }
}

/// The id of the cgroup at `path` (relative to the cgroup2 root).
pub fn id_of(root: &Path, path: &str) -> Result<CgroupId, TargetError> {
    let full = root.join(path.trim_start_matches('/'));
    let meta = fs::metadata(&full).map_err(|_| TargetError::NoCgroup(full.clone()))?;
    if !meta.is_dir() {
        return Err(TargetError::NoCgroup(full));
    }
    Ok(CgroupId(meta.ino()))
}

/// Whether no process is in the cgroup at `path` (relative to the cgroup2 root) or below it.
pub fn is_empty(root: &Path, path: &str) -> bool {
    let events = root
        .join(path.trim_start_matches('/'))
        .join("cgroup.events");
    fs::read_to_string(events)
        .map(|t| t.lines().any(|l| l.trim() == "populated 0"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_and_pure_layouts() {
        let hybrid = "35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n\
                      36 25 0:31 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_mount(hybrid).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        let pure =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            parse_cgroup2_mount(pure).unwrap(),
            Path::new("/sys/fs/cgroup")
        );
        assert_eq!(
            parse_cgroup2_mount("1 2 0:1 / /proc rw - proc proc rw\n"),
            None
        );
    }

    #[test]
    fn v2_path_of_a_process() {
        let text = "12:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n";
        assert_eq!(parse_v2_path(text).unwrap(), "/docker/abc");
        assert_eq!(
            parse_v2_path("0::/system.slice/docker-abc.scope\n").unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(parse_v2_path("4:cpu:/\n"), None);
    }

    #[test]
    fn user_given_paths() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            relative_path(root, "/sys/fs/cgroup/system.slice/x.service/"),
            "/system.slice/x.service"
        );
        assert_eq!(
            relative_path(root, "system.slice/x.service"),
            "/system.slice/x.service"
        );
    }

    #[test]
    fn id_is_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let ino = std::fs::metadata(dir.path().join("x")).unwrap().ino();
        assert_eq!(id_of(dir.path(), "/x").unwrap(), CgroupId(ino));
        assert!(matches!(
            id_of(dir.path(), "/nope"),
            Err(TargetError::NoCgroup(_))
        ));
    }
}
