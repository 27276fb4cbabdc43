"""The kernel is a boundary: random syscalls never end it.

The fuzzer (tests/progs/fuzz.c, driven by tests/fuzzing.py) runs a fixed
set of seeds in one boot each way: as root in the guest, as a guest user,
and with umlpy itself run by an unprivileged host user.  Every seed must
finish, the shell must print its last line after them, and the kernel log
must hold no oops.  `make fuzz` runs many more seeds.
"""
from __future__ import annotations

import ast

from conftest import PATH_ENV, ROOT, as_nobody, sh
from fuzzing import END, boot

CALLS = 20000


def _check(b) -> None:
    assert b.returncode is not None, "the boot timed out"
    assert b.survived, f"the kernel did not survive: {b.stdout[-2000:]}\n{b.stderr[-4000:]}"
    assert b.done == b.seeds, f"seeds that did not finish: {sorted(set(b.seeds) - set(b.done))}"
    assert not b.oopses(), "\n".join(b.oopses())
    assert b.returncode == 0


def test_fuzz_as_root():
    _check(boot(list(range(1, 5)), CALLS, timeout=600))


def test_fuzz_as_a_guest_user():
    """Unprivileged calls take other paths (EPERM checks, no CAP_* bypass)."""
    _check(boot(list(range(101, 104)), CALLS, user=1000, timeout=600))


def test_fuzz_as_a_host_user():
    """umlpy run by nobody: host calls fail in other places."""
    _check(boot(list(range(201, 203)), CALLS, prefix=as_nobody(), timeout=600))


def test_init_ignores_unhandled_signals_from_tkill():
    """init only takes the signals it handles, whatever sends them: tkill
    and tgkill of SIGKILL and SIGSTOP used to panic or stop the machine, as
    did sigqueue of SIGTERM and an orphan whose exit signal was SIGTERM."""
    r = sh(f"/t/bin/t_initsig; echo init alive; echo {END}")
    assert r.stdout.decode().endswith(f"tkill SIGTERM: 0\ntkill SIGKILL: 0\ntgkill SIGSTOP: 0\n"
                                      f"tgkill SIGKILL: 0\nrt_sigqueueinfo SIGTERM: 0\n"
                                      f"rt_tgsigqueueinfo SIGTERM: 0\ndone\ninit alive\n{END}\n"), r.stdout
    assert r.returncode == 0


def test_every_errno_the_kernel_names_exists():
    """A KernelError(E.NAME) with a missing NAME is an AttributeError, an
    oops where the guest should get an errno."""
    from umlpy.abi import errno as E
    missing = set()
    for path in (ROOT / "src" / "umlpy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "E" and not hasattr(E, node.attr):
                missing.add(f"{path.relative_to(ROOT)}: E.{node.attr}")
    assert not missing, sorted(missing)


def test_a_seed_is_one_sequence_of_calls():
    """The calls of a batch never depend on results: the same seed makes the
    same calls (names and order) again, which -v logs for reproduction."""
    calls = "/t/bin/fuzz -v -b 3 -n 300 -d /tmp/fz 42 3000 2>&1 | sed -n 's/^\\[3\\.[0-9]*\\] \\([^(]*\\)(.*/\\1/p'"
    r = sh(f"{calls} > /tmp/a; {calls} > /tmp/b; wc -l < /tmp/a; cmp /tmp/a /tmp/b && echo same", PATH_ENV)
    lines, verdict = r.stdout.decode().split()
    assert int(lines) > 20 and verdict == "same"


def test_tmpfs_ids_and_modes_are_u32_options():
    """uid=, gid= and mode= are fsparam_u32 (uid_valid too): out of range is
    EINVAL at mount, not an owner that stat cannot show."""
    opts = ["uid=99999999999", "gid=-3", "mode=-7", "uid=4294967295", "size=-1%",
            "uid=0x3e8,gid=017,mode=0750"]
    r = sh("mkdir /m; for o in " + " ".join(opts) + "; do mount -t tmpfs -o $o none /m 2>/dev/null; "
           "echo \"$o: $?\"; done; stat -c '%u %g %a' /m", PATH_ENV)
    assert r.stdout.decode().splitlines() == [f"{o}: 255" for o in opts[:-1]] + [f"{opts[-1]}: 0", "1000 15 750"]
    assert b"Oops" not in r.stderr
