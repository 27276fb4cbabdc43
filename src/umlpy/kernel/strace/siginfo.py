"""A delivered signal's siginfo as strace prints it between `---`:
{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2, ...}.  The kernel keeps
a queued signal as (si_code, fields) (kernel/signal.py); packing it with
the kernel's own pack_siginfo gives the bytes the guest's handler sees,
which are decoded here by signal and code, as strace's printsiginfo."""
from __future__ import annotations

import struct

from umlpy.abi import signals as S
from umlpy.kernel.signal import pack_siginfo
from umlpy.kernel.strace import names as N
from umlpy.kernel.strace.decode import hexaddr, signame

_FAULTS = {S.SIGSEGV: "SEGV", S.SIGBUS: "BUS", S.SIGILL: "ILL", S.SIGFPE: "FPE", S.SIGTRAP: "TRAP"}


def _code_name(sig: int, code: int) -> str:
    if code <= 0 or code == 0x80:
        return N.SI_CODES.get(code, str(code))
    if sig == S.SIGCHLD:
        return N.CLD_CODES.get(code, str(code))
    return N.FAULT_CODES.get(_FAULTS.get(sig, ""), {}).get(code, str(code))


def siginfo_text(sig: int, code: int, fields: tuple) -> str:
    info = pack_siginfo(sig, code, fields)
    signo, errno_, code = struct.unpack_from("<iii", info)
    out = [f"si_signo={signame(signo)}", f"si_code={_code_name(sig, code)}"]
    if errno_:
        out.insert(1, f"si_errno={errno_}")
    body = info[16:]
    if code == -2:          # SI_TIMER
        tid, overrun, val = struct.unpack_from("<iiQ", body)
        out += [f"si_timerid={tid:#x}", f"si_overrun={overrun}", f"si_int={struct.unpack('<i', body[8:12])[0]}",
                f"si_ptr={hexaddr(val)}"]
    elif code <= 0:          # sent by a process: SI_USER, SI_TKILL, SI_QUEUE, ...
        pid, uid = struct.unpack_from("<iI", body)
        out += [f"si_pid={pid}", f"si_uid={uid}"]
        if code in (-1, -3):     # SI_QUEUE, SI_MESGQ carry a value
            val, = struct.unpack_from("<Q", body, 8)
            out += [f"si_int={struct.unpack('<i', body[8:12])[0]}", f"si_ptr={hexaddr(val)}"]
    elif sig == S.SIGCHLD:
        pid, uid, status, utime, stime = struct.unpack_from("<iIi4xqq", body)
        st = str(status) if code == 1 else signame(status)
        out += [f"si_pid={pid}", f"si_uid={uid}", f"si_status={st}", f"si_utime={utime}", f"si_stime={stime}"]
    elif sig in _FAULTS and code != 0x80:
        addr, = struct.unpack_from("<Q", body)
        out.append(f"si_addr={hexaddr(addr)}")
    elif sig in (S.SIGSEGV, S.SIGBUS) and code == 0x80:
        out.append("si_addr=NULL")
    elif sig == S.SIGIO:
        band, fd = struct.unpack_from("<qi", body)
        out += [f"si_band={band}", f"si_fd={fd}"]
    return "{" + ", ".join(out) + "}"
