"""userfaultfd(2): the file and its ioctls; the faults are kernel/userfaultfd.py."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import userfaultfd as U
from umlpy.fs import devtmpfs
from umlpy.kernel import userfaultfd as uf
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32
from umlpy.vfs import devices
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLERR, POLLIN, File

SHARED_FCNTL_FLAGS = C.O_CLOEXEC | C.O_NONBLOCK


class UffdFile(File):
    kind = "[userfaultfd]"

    def __init__(self, ctx: uf.Ctx, flags: int) -> None:
        super().__init__(None, anon_inode(), C.O_RDONLY | (flags & C.O_NONBLOCK))
        self.ctx = ctx
        self.taken: list = []

    def read(self, task, n: int) -> bytes:
        """userfaultfd_read: whole messages; only the first may wait."""
        ctx = self.ctx
        if not ctx.ready or n < U.MSG.size:
            raise KernelError(E.EINVAL)
        ws = ctx.take(n // U.MSG.size)
        if not ws:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(ctx.fd_wq)
        self.taken = ws
        return b"".join(w.msg for w in ws)

    def unread(self, data: bytes) -> None:
        self.ctx.unread(self.taken)

    def poll(self) -> int:
        """userfaultfd_poll: a blocking uffd is always POLLERR (a read may
        wait even after a wake-up said it would not)."""
        if not self.ctx.ready or not self.nonblock:
            return POLLERR
        return POLLIN if self.ctx.pending else 0

    def poll_queues(self) -> list:
        return [self.ctx.fd_wq]

    def release(self) -> None:
        self.ctx.release()

    def ioctl(self, task, req: int, arg: int) -> int:
        ctx = self.ctx
        if req == U.UFFDIO_API:
            return _api(task, ctx, arg)
        if not ctx.ready:
            raise KernelError(E.EINVAL)
        mem = task.mem
        if req == U.UFFDIO_REGISTER:
            start, length, mode, _io = U.REGISTER.unpack(mem.read(arg, U.REGISTER.size))
            ioctls = uf.register(task, ctx, start, length, mode)
            mem.write(arg + 24, ioctls.to_bytes(8, "little"))
            return 0
        if req == U.UFFDIO_UNREGISTER:
            uf.unregister(task, ctx, *U.RANGE.unpack(mem.read(arg, U.RANGE.size)))
            return 0
        if req == U.UFFDIO_WAKE:
            uf.wake(ctx, *U.RANGE.unpack(mem.read(arg, U.RANGE.size)))
            return 0
        if req == U.UFFDIO_COPY:
            dst, src, length, mode, _c = U.COPY.unpack(mem.read(arg, U.COPY.size - 8) + bytes(8))
            uf.validate_range(dst, length)
            if src + length >= 1 << 64 or mode & ~(U.UFFDIO_COPY_MODE_DONTWAKE | U.UFFDIO_COPY_MODE_WP):
                raise KernelError(E.EINVAL)
            if mode & U.UFFDIO_COPY_MODE_WP:
                raise KernelError(E.EINVAL)     # no range is registered for WP
            return _result(mem, arg + 32, length,
                           uf.fill(task, ctx, dst, length, src, bool(mode & U.UFFDIO_COPY_MODE_DONTWAKE)))
        if req == U.UFFDIO_ZEROPAGE:
            start, length, mode, _z = U.ZEROPAGE.unpack(mem.read(arg, U.ZEROPAGE.size - 8) + bytes(8))
            uf.validate_range(start, length)
            if mode & ~U.UFFDIO_ZEROPAGE_MODE_DONTWAKE:
                raise KernelError(E.EINVAL)
            return _result(mem, arg + 24, length,
                           uf.fill(task, ctx, start, length, None, bool(mode & U.UFFDIO_ZEROPAGE_MODE_DONTWAKE)))
        raise KernelError(E.EINVAL)


def _result(mem, at: int, length: int, done: int) -> int:
    """The copy/zeropage field gets the bytes done or the error; the
    ioctl fails with it, or EAGAIN when only part was done."""
    mem.write(at, done.to_bytes(8, "little", signed=True))
    if done < 0:
        raise KernelError(-done)
    if done != length:
        raise KernelError(E.EAGAIN)
    return 0


def _api(task, ctx: uf.Ctx, arg: int) -> int:
    """UFFDIO_API: once, with UFFD_API; the features asked for must be
    offered; the answer is every feature offered and the ioctls."""
    if ctx.ready:
        raise KernelError(E.EINVAL)
    mem = task.mem
    api, features, _io = U.API.unpack(mem.read(arg, U.API.size))
    err = 0
    if api != U.UFFD_API or features & ~uf.FEATURES:
        err = E.EINVAL
    elif features & U.UFFD_FEATURE_EVENT_FORK and not capable(task.proc.creds, K.CAP_SYS_PTRACE):
        err = E.EPERM
    if err:
        mem.write(arg, bytes(U.API.size))
        raise KernelError(err)
    mem.write(arg, U.API.pack(U.UFFD_API, uf.FEATURES, U.UFFD_API_IOCTLS))
    ctx.features = features
    ctx.ready = True
    return 0


class DevFile(File):
    """/dev/userfaultfd: USERFAULTFD_IOC_NEW makes a userfaultfd with the
    argument as its flags; who may is the node's permission (0600 root),
    not CAP_SYS_PTRACE."""
    kind = "chr"

    def ioctl(self, task, req: int, arg: int) -> int:
        if req != U.USERFAULTFD_IOC_NEW:
            raise KernelError(E.EINVAL)
        return new_userfaultfd(task, s32(arg))


def register_device() -> None:
    """misc_register of /dev/userfaultfd (each boot)."""
    devices.register_char(devices.MISC_MAJOR, U.USERFAULTFD_MINOR, lambda d, i, fl, t: DevFile(d, i, fl))
    devtmpfs.add_char_node("userfaultfd", devices.MISC_MAJOR, U.USERFAULTFD_MINOR, 0o600)


def new_userfaultfd(t, flags: int) -> int:
    if flags & ~(SHARED_FCNTL_FLAGS | U.UFFD_USER_MODE_ONLY):
        raise KernelError(E.EINVAL)
    ctx = uf.Ctx(t.kernel, t.proc.mm, flags)
    return t.files.install(UffdFile(ctx, flags), bool(flags & C.O_CLOEXEC))


@syscall("userfaultfd", status=PARTIAL,
         note="MISSING mode on private anonymous memory (COPY, ZEROPAGE, WAKE, UNREGISTER; "
              "SIGBUS, THREAD_ID, EXACT_ADDRESS); no WP or MINOR, no shmem, no non-cooperative "
              "events; faults carry no WRITE flag")
def sys_userfaultfd(t, flags, *_):
    """userfaultfd_syscall_allowed: kernel faults too need CAP_SYS_PTRACE
    or vm.unprivileged_userfaultfd."""
    flags = s32(flags)
    if not flags & U.UFFD_USER_MODE_ONLY and not capable(t.proc.creds, K.CAP_SYS_PTRACE) \
            and not t.kernel.tunables.unprivileged_userfaultfd:
        raise KernelError(E.EPERM)
    return new_userfaultfd(t, flags)
