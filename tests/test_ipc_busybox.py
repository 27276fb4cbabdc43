"""busybox tools over the kernel's IPC: syslogd and logger on /dev/log (an
AF_UNIX datagram socket), fifos made by mkfifo, POSIX shared memory in
/dev/shm, select over many descriptors."""
from __future__ import annotations

from conftest import sh


def test_syslogd_and_logger_over_dev_log():
    r = sh("syslogd -n -O /tmp/log & sleep 0.3; logger -t umlpy hello-log; sleep 0.3; "
           "grep -c 'umlpy: hello-log' /tmp/log; kill %1")
    assert r.stdout == b"1\n", r.stderr


def test_mkfifo_reader_and_writer():
    r = sh("mkfifo /tmp/ff; ls -l /tmp/ff | cut -c1; (echo through-fifo > /tmp/ff &); cat /tmp/ff; "
           "(cat /tmp/ff > /tmp/out &); sleep 0.1; echo second > /tmp/ff; sleep 0.1; cat /tmp/out")
    assert r.stdout == b"p\nthrough-fifo\nsecond\n"


def test_dev_shm_is_a_tmpfs_shared_between_processes():
    r = sh("echo shared > /dev/shm/seg; sh -c 'cat /dev/shm/seg'; stat -f -c %T /dev/shm")
    assert r.stdout.split(b"\n")[0] == b"shared"


def test_mqueue_filesystem_shows_the_queues():
    r = sh("mkdir /tmp/mq; mount -t mqueue none /tmp/mq && /t/bin/t_mq_splice /tmp keep && "
           "ls /tmp/mq; cut -c1-16 /tmp/mq/umlpy_keep; rm /tmp/mq/umlpy_keep; ls /tmp/mq | wc -l")
    assert r.stdout == b"umlpy_keep\nQSIZE:4         \n0\n", r.stderr
