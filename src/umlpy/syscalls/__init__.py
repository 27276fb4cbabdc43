"""Syscall families, one module each; importing this fills the table."""
from umlpy.syscalls import (  # noqa: F401
    sys_epoll,
    sys_eventfd,
    sys_fd,
    sys_file,
    sys_futex,
    sys_info,
    sys_inotify,
    sys_ipc,
    sys_mmap,
    sys_mount,
    sys_mqueue,
    sys_poll,
    sys_process,
    sys_read_write,
    sys_signal,
    sys_socket,
    sys_stat,
    sys_time,
    sys_timer,
    sys_xattr,
)
from umlpy.syscalls.table import Table  # noqa: F401
