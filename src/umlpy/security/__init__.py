"""Security modules that stack on the kernel's own checks (Linux's
security/): Landlock alone.  The VFS and the syscalls call their hooks
after the DAC checks; the kernel's own layer never imports them."""
