"""arch_um: the host port, the only code of umlpy that talks to the host.

The kernel (package ``umlpy``) sees the host through this small contract,
as Linux's arch/um/kernel sees it through os-Linux:

- ``ptrace``:   start the first guest process, run tasks until they trap
                (one cffi call per round trip), registers, xstate, injection
                of host syscalls through the stub page;
- ``memory``:   read and write guest memory;
- ``events``:   the one event loop (epoll over a SIGCHLD signalfd, device
                fds and other host signals) and its timeout as the timer;
- ``hostfile``: host memory files (memfds: the page cache and tmpfs pages),
                host files for block devices;
- ``console``:  the host end of the console (stdin/stdout, termios);
- ``clock``:    host time and entropy;
- ``procinfo``: host facts procfs shows in the guest's terms (maps, cpuinfo);
- ``umid``:     the machine id directory;
- ``stub``:     the stub executable every guest process runs as.
"""
