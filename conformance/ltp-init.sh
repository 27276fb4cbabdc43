#!/bin/sh
# init of an LTP conformance boot (conformance/ltp.py puts it in the image as
# /opt/ltp/umlpy-init.sh).  The same script runs under umlpy and under UML,
# so it only uses what both give a Debian root: it mounts what LTP expects,
# reads the list of tests to run from the second disk (a raw file the host
# driver wrote, ended by a line "@@END"), and runs each with a deadline,
# framing its output with marker lines the driver parses:
#   @@LTP-BEGIN <name>
#   @@LTP-END <name> <exit status> <seconds>
# then @@LTP-DONE.  Exit status 124/137 come from timeout(1).
export PATH=/opt/ltp/testcases/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LTPROOT=/opt/ltp TMPDIR=/tmp LANG=C
. "${0%/*}/guest-mounts.sh"
[ -b /dev/ubdb ] || mknod /dev/ubdb b 98 16
hostname ltp
ulimit -c 0
T=${LTP_TIMEOUT:-120}
exec 3<&0       # the console: each test starts with it sane (tests set OLCUC...)
echo "@@LTP-READY"
sed -n '/^@@END/q;p' /dev/ubdb > /tmp/ltp-list
while read -r name cmd; do
    [ -n "$name" ] || continue
    stty sane <&3 2>/dev/null
    echo "@@LTP-BEGIN $name"
    rm -rf /tmp/ltp-run; mkdir -p /tmp/ltp-run
    s=$(date +%s)
    (cd /tmp/ltp-run && exec timeout -k 5 "$T" sh -c "$cmd" </dev/null 3<&- 2>&1)
    rc=$?
    stty sane <&3 2>/dev/null
    echo "@@LTP-END $name $rc $(( $(date +%s) - s ))"
done < /tmp/ltp-list
echo "@@LTP-DONE"
sync
echo o > /proc/sysrq-trigger 2>/dev/null
exit 0
