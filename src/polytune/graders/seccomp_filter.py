"""Writes the python grader's seccomp filter, as a BPF program, to stdout. Run by the system's
Python (`/usr/bin/python3`), whose Debian package python3-seccomp holds libseccomp's own
bindings; never imported by the server (the server's interpreter may be another build). bwrap
loads the program with `--seccomp FD` right before it starts the grader's interpreter.

Everything else is allowed: the namespaces already take away the network, other processes and
the host's files; this list takes away the kernel's larger attack surface and process creation.
A refused call fails with EPERM (clone3: ENOSYS, so the C library falls back to clone, whose
flags a filter can read).
"""

import errno
import sys

import seccomp

CLONE_THREAD = 0x00010000

DENIED = [
    # new processes (threads stay: clone with CLONE_THREAD, below)
    "fork",
    "vfork",
    # other processes, even through a pid file descriptor
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "kcmp",
    # the network (there is none in the namespace; no socket at all keeps it so)
    "socket",
    "socketpair",
    # namespaces, mounts, roots
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # kernel interfaces with a history of privilege escalations, none of which grading needs
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "personality",
    "modify_ldt",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    # the machine itself
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "vhangup",
    "mbind",
    "migrate_pages",
    "move_pages",
]


def build() -> seccomp.SyscallFilter:
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError):  # a call this kernel/architecture does not have
            continue
    # clone without CLONE_THREAD starts a process.
    f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


if __name__ == "__main__":
    build().export_bpf(sys.stdout)
