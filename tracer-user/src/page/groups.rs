//! Pure: what each syscall does, in a few groups a reader scans a profile by (files, network,
//! processes...). Names of x86_64, aarch64 and i386; a name no group claims is `Other`.

/// What a call does, roughly; the order is the report's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Files,
    Network,
    Processes,
    Memory,
    Time,
    Signals,
    Ipc,
    IoEvents,
    Privileged,
    SystemInfo,
    Other,
}

impl Group {
    pub const ALL: [Self; 11] = [
        Self::Files,
        Self::Network,
        Self::Processes,
        Self::Memory,
        Self::Time,
        Self::Signals,
        Self::Ipc,
        Self::IoEvents,
        Self::Privileged,
        Self::SystemInfo,
        Self::Other,
    ];

    /// The heading it gets.
    pub fn title(self) -> &'static str {
        match self {
            Self::Files => "Files and file descriptors",
            Self::Network => "Network",
            Self::Processes => "Processes, threads and scheduling",
            Self::Memory => "Memory",
            Self::Time => "Time and timers",
            Self::Signals => "Signals",
            Self::Ipc => "Inter-process communication and futexes",
            Self::IoEvents => "I/O events (poll, epoll, inotify, AIO, io_uring)",
            Self::Privileged => "Security and privileged operations",
            Self::SystemInfo => "System information",
            Self::Other => "Other",
        }
    }
}

/// The group of syscall `name`, of any architecture's table; i386's variants (`fstat64`,
/// `chown32`, `clock_gettime64`, `_llseek`) go where their base call goes.
pub fn group_of(name: &str) -> Group {
    let g = exact(name);
    if g != Group::Other {
        return g;
    }
    let base = name.trim_start_matches('_');
    let base = base.strip_suffix("_time64").unwrap_or(base);
    let base = base
        .strip_suffix("64")
        .or_else(|| base.strip_suffix("32"))
        .unwrap_or(base);
    let base = base.strip_suffix('_').unwrap_or(base);
    match base {
        "llseek" => Group::Files,
        "newselect" => Group::IoEvents,
        _ if base != name => exact(base),
        _ => Group::Other,
    }
}

fn exact(name: &str) -> Group {
    use Group::*;
    match name {
        "read" | "write" | "open" | "close" | "stat" | "fstat" | "lstat" | "lseek" | "ioctl"
        | "pread64" | "pwrite64" | "readv" | "writev" | "access" | "dup" | "dup2" | "dup3"
        | "sendfile" | "fcntl" | "flock" | "fsync" | "fdatasync" | "truncate" | "ftruncate"
        | "getdents" | "getdents64" | "getcwd" | "chdir" | "fchdir" | "rename" | "mkdir"
        | "rmdir" | "creat" | "link" | "unlink" | "symlink" | "readlink" | "chmod" | "fchmod"
        | "chown" | "fchown" | "lchown" | "umask" | "utime" | "utimes" | "mknod" | "statfs"
        | "fstatfs" | "readahead" | "setxattr" | "lsetxattr" | "fsetxattr" | "getxattr"
        | "lgetxattr" | "fgetxattr" | "listxattr" | "llistxattr" | "flistxattr" | "removexattr"
        | "lremovexattr" | "fremovexattr" | "fadvise64" | "openat" | "mkdirat" | "mknodat"
        | "fchownat" | "futimesat" | "newfstatat" | "unlinkat" | "renameat" | "linkat"
        | "symlinkat" | "readlinkat" | "fchmodat" | "faccessat" | "splice" | "tee"
        | "sync_file_range" | "vmsplice" | "utimensat" | "fallocate" | "preadv" | "pwritev"
        | "sync" | "syncfs" | "renameat2" | "memfd_create" | "copy_file_range" | "preadv2"
        | "pwritev2" | "statx" | "close_range" | "openat2" | "faccessat2" | "fchmodat2"
        | "cachestat" | "setxattrat" | "getxattrat" | "listxattrat" | "removexattrat"
        | "file_getattr" | "file_setattr" | "readdir" | "fadvise64_64" | "oldstat" | "oldfstat"
        | "oldlstat" | "fstatat64" => Files,

        "socket" | "connect" | "accept" | "accept4" | "sendto" | "recvfrom" | "sendmsg"
        | "recvmsg" | "sendmmsg" | "recvmmsg" | "shutdown" | "bind" | "listen" | "getsockname"
        | "getpeername" | "socketpair" | "setsockopt" | "getsockopt" | "socketcall" | "send"
        | "recv" => Network,

        "clone"
        | "clone3"
        | "fork"
        | "vfork"
        | "execve"
        | "execveat"
        | "exit"
        | "exit_group"
        | "wait4"
        | "waitid"
        | "waitpid"
        | "getpid"
        | "getppid"
        | "gettid"
        | "setpgid"
        | "getpgrp"
        | "getpgid"
        | "setsid"
        | "getsid"
        | "getuid"
        | "getgid"
        | "geteuid"
        | "getegid"
        | "getresuid"
        | "getresgid"
        | "getgroups"
        | "set_tid_address"
        | "prctl"
        | "arch_prctl"
        | "personality"
        | "sched_yield"
        | "sched_setparam"
        | "sched_getparam"
        | "sched_setscheduler"
        | "sched_getscheduler"
        | "sched_get_priority_max"
        | "sched_get_priority_min"
        | "sched_rr_get_interval"
        | "sched_setaffinity"
        | "sched_getaffinity"
        | "sched_setattr"
        | "sched_getattr"
        | "getpriority"
        | "setpriority"
        | "nice"
        | "getrlimit"
        | "setrlimit"
        | "ugetrlimit"
        | "prlimit64"
        | "ulimit"
        | "getrusage"
        | "set_robust_list"
        | "get_robust_list"
        | "rseq"
        | "rseq_slice_yield"
        | "set_thread_area"
        | "get_thread_area"
        | "ioprio_set"
        | "ioprio_get"
        | "getcpu"
        | "kcmp"
        | "pidfd_open"
        | "pidfd_getfd" => Processes,

        "mmap"
        | "mmap2"
        | "mprotect"
        | "munmap"
        | "brk"
        | "mremap"
        | "msync"
        | "mincore"
        | "madvise"
        | "mlock"
        | "mlock2"
        | "munlock"
        | "mlockall"
        | "munlockall"
        | "remap_file_pages"
        | "mbind"
        | "set_mempolicy"
        | "get_mempolicy"
        | "migrate_pages"
        | "move_pages"
        | "pkey_mprotect"
        | "pkey_alloc"
        | "pkey_free"
        | "process_madvise"
        | "process_mrelease"
        | "memfd_secret"
        | "set_mempolicy_home_node"
        | "map_shadow_stack"
        | "mseal"
        | "userfaultfd"
        | "membarrier" => Memory,

        "gettimeofday" | "settimeofday" | "time" | "stime" | "ftime" | "nanosleep"
        | "clock_gettime" | "clock_getres" | "clock_nanosleep" | "clock_settime"
        | "clock_adjtime" | "adjtimex" | "getitimer" | "setitimer" | "alarm" | "times"
        | "timer_create" | "timer_settime" | "timer_gettime" | "timer_getoverrun"
        | "timer_delete" | "timerfd_create" | "timerfd_settime" | "timerfd_gettime" => Time,

        "rt_sigaction" | "rt_sigprocmask" | "rt_sigreturn" | "rt_sigpending"
        | "rt_sigtimedwait" | "rt_sigqueueinfo" | "rt_sigsuspend" | "rt_tgsigqueueinfo"
        | "sigaltstack" | "kill" | "tkill" | "tgkill" | "pause" | "restart_syscall"
        | "signalfd" | "signalfd4" | "pidfd_send_signal" | "sigreturn" | "sigaction" | "signal"
        | "sigprocmask" | "sigsuspend" | "sigpending" | "sgetmask" | "ssetmask" => Signals,

        "pipe" | "pipe2" | "shmget" | "shmat" | "shmctl" | "shmdt" | "semget" | "semop"
        | "semctl" | "semtimedop" | "msgget" | "msgsnd" | "msgrcv" | "msgctl" | "mq_open"
        | "mq_unlink" | "mq_timedsend" | "mq_timedreceive" | "mq_notify" | "mq_getsetattr"
        | "futex" | "futex_waitv" | "futex_wake" | "futex_wait" | "futex_requeue" | "eventfd"
        | "eventfd2" | "ipc" => Ipc,

        "poll" | "ppoll" | "select" | "pselect6" | "epoll_create" | "epoll_create1"
        | "epoll_ctl" | "epoll_wait" | "epoll_pwait" | "epoll_pwait2" | "epoll_ctl_old"
        | "epoll_wait_old" | "inotify_init" | "inotify_init1" | "inotify_add_watch"
        | "inotify_rm_watch" | "fanotify_init" | "fanotify_mark" | "io_setup" | "io_destroy"
        | "io_getevents" | "io_pgetevents" | "io_submit" | "io_cancel" | "io_uring_setup"
        | "io_uring_enter" | "io_uring_register" => IoEvents,

        "ptrace"
        | "process_vm_readv"
        | "process_vm_writev"
        | "setuid"
        | "setgid"
        | "setreuid"
        | "setregid"
        | "setresuid"
        | "setresgid"
        | "setgroups"
        | "setfsuid"
        | "setfsgid"
        | "capget"
        | "capset"
        | "seccomp"
        | "bpf"
        | "perf_event_open"
        | "mount"
        | "umount"
        | "umount2"
        | "pivot_root"
        | "chroot"
        | "swapon"
        | "swapoff"
        | "reboot"
        | "sethostname"
        | "setdomainname"
        | "iopl"
        | "ioperm"
        | "vm86"
        | "vm86old"
        | "modify_ldt"
        | "create_module"
        | "init_module"
        | "finit_module"
        | "delete_module"
        | "kexec_load"
        | "kexec_file_load"
        | "acct"
        | "quotactl"
        | "quotactl_fd"
        | "vhangup"
        | "unshare"
        | "setns"
        | "add_key"
        | "request_key"
        | "keyctl"
        | "landlock_create_ruleset"
        | "landlock_add_rule"
        | "landlock_restrict_self"
        | "open_tree"
        | "open_tree_attr"
        | "move_mount"
        | "fsopen"
        | "fsconfig"
        | "fsmount"
        | "fspick"
        | "mount_setattr"
        | "statmount"
        | "listmount"
        | "listns"
        | "lsm_get_self_attr"
        | "lsm_set_self_attr"
        | "lsm_list_modules"
        | "lookup_dcookie"
        | "nfsservctl"
        | "name_to_handle_at"
        | "open_by_handle_at"
        | "syslog"
        | "bdflush"
        | "idle" => Privileged,

        "uname" | "olduname" | "oldolduname" | "sysinfo" | "sysfs" | "_sysctl" | "ustat"
        | "getrandom" => SystemInfo,

        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::Arch;

    /// Names left in `Other` on purpose: unimplemented in Linux, obsolete, or the kernel's own.
    const DELIBERATELY_OTHER: &[&str] = &[
        "getpmsg",
        "putpmsg",
        "afs_syscall",
        "tuxcall",
        "security",
        "vserver",
        "uselib",
        "get_kernel_syms",
        "query_module",
        "uretprobe",
        "uprobe",
        // i386 only
        "break",
        "gtty",
        "stty",
        "lock",
        "mpx",
        "prof",
        "profil",
    ];

    #[test]
    fn every_native_name_has_a_deliberate_group() {
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::I386] {
            for name in arch.names() {
                let g = group_of(name);
                if DELIBERATELY_OTHER.contains(&name) {
                    assert_eq!(g, Group::Other, "{name}");
                } else {
                    assert_ne!(g, Group::Other, "{name} ({arch:?}) has no group");
                }
            }
        }
    }

    #[test]
    fn common_calls_are_where_a_reader_looks_for_them() {
        for (name, g) in [
            ("openat", Group::Files),
            ("read", Group::Files),
            ("connect", Group::Network),
            ("clone", Group::Processes),
            ("mmap", Group::Memory),
            ("clock_gettime", Group::Time),
            ("rt_sigaction", Group::Signals),
            ("futex", Group::Ipc),
            ("epoll_wait", Group::IoEvents),
            ("mount", Group::Privileged),
            ("uname", Group::SystemInfo),
            ("fstat64", Group::Files),
            ("chown32", Group::Files),
            ("clock_gettime64", Group::Time),
            ("_llseek", Group::Files),
            ("_newselect", Group::IoEvents),
            ("not_a_call", Group::Other),
            ("<script>", Group::Other),
        ] {
            assert_eq!(group_of(name), g, "{name}");
        }
    }
}
