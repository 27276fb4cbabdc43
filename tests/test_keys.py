"""The key retention service where a native run cannot be compared line by
line (tests/progs/t_keys.c is the differential test): freeing and the key
garbage collector, asynchronous in Linux and immediate here, the quota
sysctls, and request_key's upcall with and without /sbin/request-key."""
from __future__ import annotations

from conftest import sh

PROC = "mount -t proc proc /proc; "

# root's user keyrings and .user_reg exist from boot (40 bytes: the names,
# and the register's two links); then each line follows key.c's accounting
EXPECTED = """\
boot:     0:     4 3/3 3/1000000 40/25000000
gc_delay: 300
maxbytes: 20000
maxkeys: 200
root_maxbytes: 25000000
root_maxkeys: 1000000
joined:     0:     5 4/4 4/1000000 45/25000000
added:     0:     6 5/5 5/1000000 56/25000000
unlink: 0
describe unlinked: -1 ENOKEY
unlinked:     0:     5 4/4 4/1000000 45/25000000
clear: 0
describe keyring of a cleared keyring: -1 ENOKEY
describe its key: -1 ENOKEY
cleared:     0:     5 4/4 4/1000000 45/25000000
write gc_delay=1: ok
timeout: 0
revoke: 0
links: 3
links after gc_delay: 1
describe expired: -1 ENOKEY
describe revoked: -1 ENOKEY
invalidate: 0
links after invalidation: 1
write gc_delay=300: ok
collected:     0:     5 4/4 4/1000000 45/25000000
write maxkeys=0: EINVAL
write maxkeys=abc: EINVAL
write maxkeys=2147483648: EINVAL
write gc_delay=-1: EINVAL
write root_maxkeys=6: ok
add q0: ok
add q1: ok
add q2: EDQUOT
root at its limit:     0:     7 6/6 6/6 61/25000000
write root_maxkeys=1000000: ok
write root_maxbytes=60: ok
add over root_maxbytes: -1 EDQUOT
write root_maxbytes=25000000: ok
child:     0:     9 8/8 8/1000000 77/25000000
child reaped:     0:     5 4/4 4/1000000 45/25000000
non-root opens a sysctl for writing: EACCES
user keyring: 1
uid 1000:     0:     5 4/4 4/1000000 53/25000000
uid 1000:  1000:     4 4/4 4/200 40/20000
done
"""


def test_freeing_collection_and_quotas():
    r = sh(PROC + "/t/bin/t_keys_gc; true")
    assert r.stdout.decode() == EXPECTED, r.stderr.decode()[-2000:]


def test_request_key_upcall():
    """Without /sbin/request-key the helper's exec fails: ENOENT, and the
    key stays negative (ENOKEY the next time); with one, umlpy runs no
    usermode helper and answers as when it does not instantiate the key."""
    r = sh("/t/bin/t_keys_gc request; true")
    assert r.stdout.decode() == ("request_key with callout: -1 ENOENT\n"
                                 "request_key again: -1 ENOKEY\n"), r.stderr.decode()[-2000:]
    r = sh("mkdir -p /sbin && printf '#!/bin/sh\\nexit 0\\n' > /sbin/request-key && "
           "chmod 755 /sbin/request-key && /t/bin/t_keys_gc request; true")
    assert r.stdout.decode() == ("request_key with callout: -1 ENOKEY\n"
                                 "request_key again: -1 ENOKEY\n"), r.stderr.decode()[-2000:]
