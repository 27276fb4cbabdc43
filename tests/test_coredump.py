"""Core dumps (syscalls/coredump.py) and /proc/PID/coredump_filter.

tests/progs/t_coredump.c checks its children's cores from inside the guest
(which patterns each filter keeps); the cores it keeps come out through a
hostfs mount and are read here as ELF, with the host's readelf too.  Only
coredump_filter's parsing is compared with a native run: the host's
core_pattern is not ours to set."""
from __future__ import annotations

import shutil
import struct
import subprocess

from conftest import PROGS, native, sh

EXPECTED_DUMPS = """\
MADV_DONTDUMP 0, MADV_DODUMP 0
filter 00000033: signal 6 core 1; mode 600, x86-64 ELF core anon-private yes anon-shared yes \
file-private no file-shared no dontdump no dodump yes elf-headers yes
filter 0000003c: signal 6 core 1; mode 600, x86-64 ELF core anon-private no anon-shared no \
file-private yes file-shared yes dontdump no dodump no elf-headers yes
RLIMIT_CORE 3 pages: signal 6 core 1; size at most the limit 1; mode 600, x86-64 ELF core anon-private no \
anon-shared no file-private no file-shared no dontdump no dodump no elf-headers {fits}
RLIMIT_CORE 4095: signal 6 core 0; core file none
over a symlink: signal 6 core 1; symlink target not made; core is a regular file; mode 600, x86-64 ELF core \
anon-private yes anon-shared yes file-private no file-shared no dontdump no dodump yes elf-headers yes
umask 0277: signal 6 core 0; size 0
core_pattern dump-%e-%s-%%-%c-%z.x: signal 6 core 1; found; mode 600, x86-64 ELF core anon-private yes \
anon-shared yes file-private no file-shared no dontdump no dodump yes elf-headers yes
core_pattern nodir/core: signal 6 core 0
core_uses_pid 1: signal 6 core 1; core.PID found, core not found
two threads: signal 6 core 1
"""

NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_SIGINFO, NT_FILE, NT_X86_XSTATE = 0x53494749, 0x46494c45, 0x202
RIP = 16 * 8        # rip's place in pr_reg (user_regs_struct)
PR_REG = 112


def test_coredump_filter_like_native():
    want = native([str(PROGS / "t_coredump"), "filter"])
    got = sh("mount -t proc proc /proc; /t/bin/t_coredump filter").stdout
    assert got == want
    assert b"'abc' -> EINVAL" in got and b"after exec 00000021" in got


def _notes(core: bytes) -> tuple[list[tuple[bytes, int, bytes]], list[tuple]]:
    """The notes (name, type, desc) and PT_LOADs (flags, offset, vaddr,
    filesz, memsz) of an ELF core."""
    assert core[:4] == b"\x7fELF" and struct.unpack_from("<HH", core, 16) == (4, 62)
    phoff, = struct.unpack_from("<Q", core, 32)
    phentsize, phnum = struct.unpack_from("<HH", core, 54)
    notes, loads = [], []
    for i in range(phnum):
        ptype, flags, off, vaddr, _pa, filesz, memsz, _al = struct.unpack_from("<IIQQQQQQ", core, phoff + i * phentsize)
        if ptype == 1:
            loads.append((flags, off, vaddr, filesz, memsz))
        elif ptype == 4:
            pos = off
            while pos < off + filesz:
                namesz, descsz, ntype = struct.unpack_from("<III", core, pos)
                pos += 12
                name = core[pos:pos + namesz].rstrip(b"\0")
                pos += -(-namesz // 4) * 4
                notes.append((name, ntype, core[pos:pos + descsz]))
                pos += -(-descsz // 4) * 4
    return notes, loads


def _files(desc: bytes) -> list[tuple[int, int, int, bytes]]:
    count, _page = struct.unpack_from("<QQ", desc)
    names = desc[16 + 24 * count:].split(b"\0")
    return [(*struct.unpack_from("<QQQ", desc, 16 + 24 * i), names[i]) for i in range(count)]


def test_core_files(scratch):
    r = sh(f"mount -t proc proc /proc; mount none /mnt -t hostfs -o {scratch}; mkdir -p /tmp/cd; "
           "/t/bin/t_coredump dump /tmp/cd && cp /tmp/cd/core.keep /tmp/cd/core.threads /mnt/",
           "hostfs=/")
    core = (scratch / "core.keep").read_bytes()
    notes, loads = _notes(core)
    # whether the executable's ELF header page still fits in a core of three
    # pages after the headers and notes depends on the host CPU's xstate (its
    # size in the notes), as natively: the data starts on the page after the
    # notes, as this process's own core shows (its first PT_LOAD's offset)
    want = EXPECTED_DUMPS.replace("{fits}", "yes" if loads[0][1] + 4096 <= 3 * 4096 else "no")
    assert r.stdout.decode() == want, r.stderr.decode()[-3000:]
    assert [(n, t) for n, t, _ in notes] == [
        (b"CORE", NT_PRSTATUS), (b"CORE", NT_PRPSINFO), (b"CORE", NT_SIGINFO), (b"CORE", NT_AUXV),
        (b"CORE", NT_FILE), (b"CORE", NT_FPREGSET), (b"LINUX", NT_X86_XSTATE)]
    prstatus, psinfo, siginfo, auxv, files = (d for _, _, d in notes[:5])
    assert len(prstatus) == 336 and struct.unpack_from("<ih", prstatus, 0)[0] == 6
    assert struct.unpack_from("<i", siginfo)[0] == 6 and len(siginfo) == 128
    assert psinfo[40:56].rstrip(b"\0") == b"t_coredump" and psinfo[56:].startswith(b"/t/bin/t_coredump dump")
    assert struct.unpack_from("<QQ", auxv, len(auxv) - 16) == (0, 0)     # ends with AT_NULL
    mapped = _files(files)
    exe = [m for m in mapped if m[3] == b"/t/bin/t_coredump"]
    assert exe and any(m[3] == b"/tmp/cd/mapped2" for m in mapped)
    rip, = struct.unpack_from("<Q", prstatus, PR_REG + RIP)
    text = [(v, v + mem) for flags, _o, v, _f, mem in loads if flags & 1 and any(s <= v < e for s, e, _, _ in exe)]
    assert any(lo <= rip < hi for lo, hi in text), (hex(rip), text)
    threads, _ = _notes((scratch / "core.threads").read_bytes())
    assert sum(1 for _, t, _ in threads if t == NT_PRSTATUS) == 2
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-n", str(scratch / "core.keep")], capture_output=True, text=True)
        # (a binutils built 32-bit decodes no NT_FILE: its names are checked above)
        assert out.returncode == 0 and "NT_PRSTATUS" in out.stdout and "NT_FILE" in out.stdout
        assert "NT_X86_XSTATE" in out.stdout and "Warning" not in out.stderr


def test_core_of_a_program_on_hostfs(scratch):
    """A program on a hostfs mount dumps as one on the guest's own disk: its
    mappings of the host file are read for the core (the core's writer once
    met a host file where it expected a kernel memfd: an oops)."""
    shutil.copy(PROGS / "t_coredump", scratch)
    r = sh(f"mount -t proc proc /proc; mount none /mnt -t hostfs -o {scratch}; mkdir -p /tmp/a /tmp/b; "
           "/t/bin/t_coredump dump /tmp/a > /tmp/own; /mnt/t_coredump dump /tmp/b > /tmp/host; "
           "cmp /tmp/own /tmp/host && echo same; cat /tmp/host", "hostfs=/")
    assert b"Oops" not in r.stderr, r.stderr.decode()[-3000:]
    assert r.stdout.decode().startswith("same\n"), r.stdout.decode()
