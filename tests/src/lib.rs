//! The end-to-end harness: running the tracer and reading its profiles ([`harness`]), Docker
//! containers and their clean-up ([`docker`]), host-side workloads ([`workloads`]) and a daemon
//! under test ([`daemon`]). Everything is re-exported here; the tests are in `tests/`, one
//! file per feature (see the README).

pub mod cri;
pub mod daemon;
pub mod docker;
pub mod harness;
pub mod podman;
pub mod workloads;

pub use cri::{Cri, CriPod, CriSeccomp, Qos, CRI_BUSYBOX, CRI_ENDPOINT, POD_NAMESPACE};
pub use daemon::{target_status, Daemon, SYSCALL_LINKS};
pub use docker::{
    assert_running, assert_unseen_refused, bookworm, busybox, cleanup, docker, errno_under, ip_of,
    rawcall_in_container, seccomp_opt, Cleanup,
};
pub use harness::{
    allowed_names, assert_one_line_error, in_private_mount_ns, nr, preflight, rules_for, sh,
    tracer, tracer_bin, unseen, workdir, Recording,
};
pub use podman::{
    cgroup2_path_of, cgroup2_root, cgroup_v1_path_of, podman, podman_errno_under, PodmanContainer,
};
pub use workloads::{connect, http_get, probe_in_cgroup, redis_load, PROBE};
