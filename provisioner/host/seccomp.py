"""The system calls a facility's container may make: a seccomp profile of its own.

Docker's default profile allows some 300 system calls, written for any program. A facility is one
Python program (its server, its management commands and the PDF export's child) on a volume and a
socket directory, with no network: it needs fewer than half of them. Everything else is refused
(EPERM, as Docker's profile refuses; Docker 20.10 ignores a profile's own default errno), but
`clone3`, which answers ENOSYS as if the kernel lacked it, so that the C library starts threads
with `clone` instead. Only the host's own architecture is allowed, so no 32-bit entry point is
left to a compromised facility either. The profile relies on no-new-privileges, which every
container medcell makes has (runc then applies it just before the facility's program starts).

Being short also makes it cheaper, measured on a wake (docs/figures.md): runc compiles the
profile into a filter at every start, in the container's cgroup, and the kernel runs that filter
at every system call. Against this one, Docker's profile costs a facility's start ~10 ms more of
runc's init and ~8 ms more in the interpreter.

Swarm services cannot carry a profile on Docker 20.10 (its service API has no seccomp field), so
in cluster mode a facility runs under Docker's default profile.
"""

from __future__ import annotations

import json
import platform
import socket

# Grouped by what needs them. Names a kernel does not know on an architecture (aarch64 has no
# `open`, `stat`, `pipe`…) are skipped by runc.
ALLOWED = {
    # the interpreter and its memory
    "memory": "brk mmap munmap mremap mprotect madvise arch_prctl set_tid_address set_robust_list "
    "rseq prlimit64 getrlimit exit exit_group getrandom futex",
    # who and where it is
    "identity": "getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid "
    "getgroups uname sysinfo getrusage times sched_getaffinity sched_yield capget capset",
    "signals": "rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack kill tgkill tkill "
    "restart_syscall",
    # threads of the server, and the PDF export's child (fork, exec, pipes, wait)
    "processes": "clone vfork execve wait4 waitid pipe pipe2 dup dup2 dup3 close close_range",
    # the database, keys, uploads, backups and exports on its volumes and /tmp
    "files": "read write readv writev pread64 pwrite64 preadv pwritev open openat lseek "
    "stat fstat lstat newfstatat statx statfs fstatfs access faccessat faccessat2 fcntl flock "
    "fsync fdatasync ftruncate truncate fallocate fadvise64 getdents64 getcwd chdir fchdir "
    "mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2 readlink readlinkat chmod "
    "fchmod fchmodat fchown utimensat copy_file_range sendfile ioctl umask",
    # its Unix socket (which address families: below)
    "sockets": "bind listen accept accept4 connect getsockname getpeername getsockopt "
    "setsockopt shutdown sendto recvfrom sendmsg recvmsg socketpair",
    # waiting and time
    "waiting": "poll ppoll select pselect6 epoll_create epoll_create1 epoll_ctl epoll_wait "
    "epoll_pwait eventfd2 nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time",
}

# `socket` only for Unix sockets: the facility has no network, and no other kind of socket
# (netlink, packet, another host's) is any of its business. One family only: the conditions of a
# rule must all hold, so a second one here would allow none.
SOCKET_FAMILY = socket.AF_UNIX

ENOSYS = 38
ARCHITECTURES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def names() -> list[str]:
    return sorted({name for group in ALLOWED.values() for name in group.split()})


def facility_profile(machine: str | None = None) -> str:
    """The profile as Docker's API takes it (`seccomp=<json>` in SecurityOpt), for this host's
    architecture. On an architecture this module does not know: Docker's default (empty)."""
    architecture = ARCHITECTURES.get(machine or platform.machine())
    if architecture is None:
        return ""
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": [architecture],
        "syscalls": [
            {"names": names(), "action": "SCMP_ACT_ALLOW"},
            # Said explicitly as well: the C library starts threads with `clone3` and takes
            # `clone` only when told the kernel lacks it.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": SOCKET_FAMILY, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    return json.dumps(profile, separators=(",", ":"), sort_keys=True)
