//! The names both sides of the kernel/user line use: maps, globals the loader writes, and
//! programs. The kernel side spells them as identifiers (aya-ebpf names a map after its
//! static); tracer-user checks both against the built object.

/// Names of the kernel programs' maps: what `tracer-ebpf` declares, user space opens and the
/// daemon pins. aya-ebpf names a map after its static, so the kernel side cannot use these;
/// tracer-user's `bpf::contract` tests check them against the built object.
pub mod maps {
    /// Traced cgroups and what they did (`CgroupRecord` by cgroup id).
    pub const TARGETS: &str = "TARGETS";
    /// One bit per cgroup id hash (see [`filter_bit`](crate::filter_bit)).
    pub const FILTER: &str = "FILTER";
    /// Generation of the per-CPU task caches: `[0]` the kernel's, `[1]` user space's.
    pub const GEN: &str = "GEN";
    /// The per-CPU task cache.
    pub const CPU: &str = "CPU";
    /// Seccomp filter installs under way.
    pub const INSTALLS: &str = "INSTALLS";
    /// Cgroup paths to adopt when created (`CgroupPath` to a tag).
    pub const WATCH: &str = "WATCH";
    /// The call each task is inside (see [`entered`](crate::entered)).
    pub const ENTERED: &str = "ENTERED";
    /// Recorded argument values (`ArgKey`).
    pub const ARGS: &str = "ARGS";
    /// The ring buffer of `Event`s.
    pub const EVENTS: &str = "EVENTS";
    /// Per-CPU counters, indexed by [`counter`](crate::counter).
    pub const COUNTERS: &str = "COUNTERS";
    /// The parent directories watched with `watch_tag::PARENT`, by length and level (see
    /// [`parent_entry`](crate::parent_entry)).
    pub const PARENT_LENS: &str = "PARENT_LENS";
    /// One all-zero `CgroupRecord`.
    pub const ZERO: &str = "ZERO";
    /// Per-CPU scratch space for a path key.
    pub const SCRATCH: &str = "SCRATCH";
    /// Every map of the kernel programs, exactly: the daemon pins these, so that processes
    /// share what the programs record.
    pub const ALL: [&str; 13] = [
        TARGETS,
        FILTER,
        GEN,
        CPU,
        INSTALLS,
        WATCH,
        ENTERED,
        ARGS,
        EVENTS,
        COUNTERS,
        PARENT_LENS,
        ZERO,
        SCRATCH,
    ];
}

/// Names of the read-only globals user space writes into the programs before loading them;
/// their meaning is documented at their definitions in `tracer-ebpf`.
pub mod globals {
    pub const SECCOMP_MODE_OFFSET: &str = "SECCOMP_MODE_OFFSET";
    pub const REGS_NR_OFFSET: &str = "REGS_NR_OFFSET";
    pub const REGS_ARG0_OFFSET: &str = "REGS_ARG0_OFFSET";
    pub const COMPAT_OFFSET: &str = "COMPAT_OFFSET";
    pub const COMPAT_MASK: &str = "COMPAT_MASK";
    pub const ARG_NRS: &str = "ARG_NRS";
    pub const INSTALL_NRS: &str = "INSTALL_NRS";
    pub const MKDIR_ROOT_OFFSET: &str = "MKDIR_ROOT_OFFSET";
    pub const MKDIR_ID_OFFSET: &str = "MKDIR_ID_OFFSET";
    pub const MKDIR_PATH_OFFSET: &str = "MKDIR_PATH_OFFSET";
    pub const MKDIR_LEVEL_OFFSET: &str = "MKDIR_LEVEL_OFFSET";
    pub const TASK_CGROUPS_OFFSET: &str = "TASK_CGROUPS_OFFSET";
    pub const CSS_SET_DFL_CGRP_OFFSET: &str = "CSS_SET_DFL_CGRP_OFFSET";
    pub const CGROUP_KN_OFFSET: &str = "CGROUP_KN_OFFSET";
    pub const KERNFS_NODE_ID_OFFSET: &str = "KERNFS_NODE_ID_OFFSET";
    /// `cgroup.self.parent` (the parent's css) and `cgroup_subsys_state.cgroup` (its cgroup):
    /// the step from a cgroup to its parent.
    pub const CGROUP_PARENT_OFFSET: &str = "CGROUP_PARENT_OFFSET";
    pub const CSS_CGROUP_OFFSET: &str = "CSS_CGROUP_OFFSET";
    pub const TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
    pub const TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
    pub const REGS_CX_OFFSET: &str = "REGS_CX_OFFSET";
    pub const REGS_IP_OFFSET: &str = "REGS_IP_OFFSET";
    /// The tracer's own process, never recorded.
    pub const TRACER_TGID: &str = "TRACER_TGID";
    /// Every global user space writes: the kernel layout, then the tracer's tgid.
    pub const ALL: [&str; 22] = [
        SECCOMP_MODE_OFFSET,
        REGS_NR_OFFSET,
        REGS_ARG0_OFFSET,
        COMPAT_OFFSET,
        COMPAT_MASK,
        ARG_NRS,
        INSTALL_NRS,
        MKDIR_ROOT_OFFSET,
        MKDIR_ID_OFFSET,
        MKDIR_PATH_OFFSET,
        MKDIR_LEVEL_OFFSET,
        TASK_CGROUPS_OFFSET,
        CSS_SET_DFL_CGRP_OFFSET,
        CGROUP_KN_OFFSET,
        KERNFS_NODE_ID_OFFSET,
        CGROUP_PARENT_OFFSET,
        CSS_CGROUP_OFFSET,
        TASK_PID_OFFSET,
        TASK_TGID_OFFSET,
        REGS_CX_OFFSET,
        REGS_IP_OFFSET,
        TRACER_TGID,
    ];
}

/// Names of the kernel programs (aya names a program after its function).
pub mod programs {
    /// Records calls (BTF tracepoint `sys_enter`).
    pub const SYS_ENTER: &str = "sys_enter";
    /// Records refusals (BTF tracepoint `sys_exit`).
    pub const SYS_EXIT: &str = "sys_exit";
    /// Invalidates the per-CPU task caches on task creation (`sched_process_fork`).
    pub const TASK_FORK: &str = "task_fork";
    /// Invalidates them when a task changes cgroup (`cgroup_attach_task`).
    pub const CGROUP_ATTACH: &str = "cgroup_attach";
    /// Adopts watched cgroups when created (tracepoint `cgroup:cgroup_mkdir`).
    pub const CGROUP_MKDIR: &str = "cgroup_mkdir";
    /// Benchmark: an empty program on sys_enter.
    pub const FLOOR: &str = "floor";
    /// Benchmark: an empty program on sys_exit.
    pub const FLOOR_EXIT: &str = "floor_exit";
    /// Benchmark: `bpf_get_current_cgroup_id` alone, on sys_enter.
    pub const PROBE_HELPER: &str = "probe_helper";
    /// Benchmark: the helper and a TARGETS lookup, on sys_enter.
    pub const PROBE_HASH: &str = "probe_hash";
    /// Every program in the object.
    pub const ALL: [&str; 9] = [
        SYS_ENTER,
        SYS_EXIT,
        TASK_FORK,
        CGROUP_ATTACH,
        CGROUP_MKDIR,
        FLOOR,
        FLOOR_EXIT,
        PROBE_HELPER,
        PROBE_HASH,
    ];
}
