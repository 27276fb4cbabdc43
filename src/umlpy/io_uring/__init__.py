"""io_uring: rings shared with the guest (rings.py), the ring file
(ring_file.py), submission and parked requests (submit.py), the opcodes
(ops.py).  The syscalls are in syscalls/sys_io_uring.py."""
