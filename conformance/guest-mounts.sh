# Sourced by the conformance runs' init scripts (ltp-init.sh, posix-init.sh),
# which their build steps put beside it: the mounts a Debian system has
# once booted, made by hand (the runs boot with a shell script as init),
# and the root made writable.
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/shm /dev/pts /dev/mqueue
mount -t tmpfs shm /dev/shm 2>/dev/null
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -o remount,rw / 2>/dev/null
