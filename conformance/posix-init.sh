#!/bin/sh
# init of an Open POSIX Test Suite boot (conformance/posix.py puts it in the
# image as /opt/posix/umlpy-init.sh).  The same script runs under umlpy and,
# natively, as the first process of a chroot in namespaces of its own
# (mount, pid, uts, ipc), so it only uses what both give a Debian root.  It
# mounts what the tests expect, reads the tests to run (a raw file ended by a
# line "@@END": the second disk in a boot, $POSIX_LIST natively), one
# "name directory" a line, and runs each in its directory with a deadline,
# framing its output with ltp.py's marker lines:
#   @@LTP-BEGIN <name>
#   @@LTP-END <name> <exit status> <seconds>
# then @@LTP-DONE.  Exit status 124/137 come from timeout(1).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export TMPDIR=/tmp LANG=C
. "${0%/*}/guest-mounts.sh"
[ -n "$POSIX_LIST" ] || { [ -b /dev/ubdb ] || mknod /dev/ubdb b 98 16; POSIX_LIST=/dev/ubdb; }
hostname posix
# the queue limits root has with CAP_SYS_RESOURCE (HARD_MSGMAX,
# HARD_MSGSIZEMAX) for everyone, in this IPC namespace: a host that runs
# the native side in a container without that capability then opens the
# queues of up to 40 messages the tests ask for, as the guest's root does
echo 65536 > /proc/sys/fs/mqueue/msg_max
echo 16777216 > /proc/sys/fs/mqueue/msgsize_max
ulimit -c 0
T=${POSIX_TIMEOUT:-30}
echo "@@LTP-READY"
sed -n '/^@@END/q;p' "$POSIX_LIST" > /tmp/posix-list
while read -r name dir; do
    [ -n "$name" ] || continue
    echo "@@LTP-BEGIN $name"
    s=$(date +%s)
    (cd "/opt/posix/$dir" && exec timeout -k 5 "$T" "./$name.run-test" </dev/null 2>&1)
    rc=$?
    echo "@@LTP-END $name $rc $(( $(date +%s) - s ))"
done < /tmp/posix-list
echo "@@LTP-DONE"
sync
exit 0
