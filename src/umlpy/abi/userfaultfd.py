"""userfaultfd's ABI: linux/userfaultfd.h (6.1)."""
from __future__ import annotations

import struct

UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1

# features (struct uffdio_api.features)
UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0
UFFD_FEATURE_EVENT_FORK = 1 << 1
UFFD_FEATURE_EVENT_REMAP = 1 << 2
UFFD_FEATURE_EVENT_REMOVE = 1 << 3
UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4
UFFD_FEATURE_MISSING_SHMEM = 1 << 5
UFFD_FEATURE_EVENT_UNMAP = 1 << 6
UFFD_FEATURE_SIGBUS = 1 << 7
UFFD_FEATURE_THREAD_ID = 1 << 8
UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9
UFFD_FEATURE_MINOR_SHMEM = 1 << 10
UFFD_FEATURE_EXACT_ADDRESS = 1 << 11
UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12

# the ioctl numbers (_UFFDIO_*) and the bitmasks of them the ioctls report
_UFFDIO_REGISTER, _UFFDIO_UNREGISTER, _UFFDIO_WAKE, _UFFDIO_COPY = 0x00, 0x01, 0x02, 0x03
_UFFDIO_ZEROPAGE, _UFFDIO_WRITEPROTECT, _UFFDIO_CONTINUE, _UFFDIO_API = 0x04, 0x06, 0x07, 0x3F
UFFD_API_IOCTLS = 1 << _UFFDIO_REGISTER | 1 << _UFFDIO_UNREGISTER | 1 << _UFFDIO_API
UFFD_API_RANGE_IOCTLS = 1 << _UFFDIO_WAKE | 1 << _UFFDIO_COPY | 1 << _UFFDIO_ZEROPAGE


def _iowr(nr: int, size: int) -> int:
    return 3 << 30 | size << 16 | UFFD_API << 8 | nr


def _ior(nr: int, size: int) -> int:
    return 2 << 30 | size << 16 | UFFD_API << 8 | nr


API = struct.Struct("<QQQ")                 # struct uffdio_api: api, features, ioctls
RANGE = struct.Struct("<QQ")                # struct uffdio_range: start, len
REGISTER = struct.Struct("<QQQQ")           # range, mode, ioctls
COPY = struct.Struct("<QQQQq")              # dst, src, len, mode, copy
ZEROPAGE = struct.Struct("<QQQq")           # range, mode, zeropage
MSG = struct.Struct("<BBHIQQI4x")           # struct uffd_msg as a pagefault: event, .., flags, address, ptid

UFFDIO_API = _iowr(_UFFDIO_API, API.size)
UFFDIO_REGISTER = _iowr(_UFFDIO_REGISTER, REGISTER.size)
UFFDIO_UNREGISTER = _ior(_UFFDIO_UNREGISTER, RANGE.size)
UFFDIO_WAKE = _ior(_UFFDIO_WAKE, RANGE.size)
UFFDIO_COPY = _iowr(_UFFDIO_COPY, COPY.size)
UFFDIO_ZEROPAGE = _iowr(_UFFDIO_ZEROPAGE, ZEROPAGE.size)

UFFDIO_REGISTER_MODE_MISSING = 1 << 0
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_REGISTER_MODE_MINOR = 1 << 2
UFFDIO_COPY_MODE_DONTWAKE = 1 << 0
UFFDIO_COPY_MODE_WP = 1 << 1
UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1 << 0

UFFD_EVENT_PAGEFAULT = 0x12
UFFD_PAGEFAULT_FLAG_WRITE = 1 << 0

# /dev/userfaultfd (misc; Linux gives it a dynamic minor): USERFAULTFD_IOC_NEW makes an fd
USERFAULTFD_MINOR = 126
USERFAULTFD_IOC_NEW = 0xAA00
