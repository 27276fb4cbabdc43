"""`umlpy IMAGE [params]` boots; `umlpy build|syscalls` are utilities."""
from __future__ import annotations

import os
import sys

import click

from umlpy_cli.closed_pipe import quiet_on_closed_pipe
from umlpy_cli.image import BOOT_OPTIONS, build_image, run_image, umlpy_version


@click.group(help="umlpy: a User-mode-Linux-style kernel in Python.\n\n"
                  "Boot a kernel image with `umlpy [--pdb] ./linux-um [kernel parameters] [-- init args]`; "
                  "--pdb (the `pdb` parameter) stops in pdb at a kernel oops (docs/debugging.md).")
@click.version_option(umlpy_version(), "--version", "-V", prog_name="umlpy",
                      message="%(prog)s %(version)s")
def cli() -> None:
    pass


@cli.command(help="Build a kernel image (default ./linux-um).")
@click.option("-o", "--output", default="linux-um", show_default=True)
@click.option("--cmdline", default="", help="Default kernel command line baked into the image.")
def build(output: str, cmdline: str) -> None:
    cfg = build_image(output, cmdline)
    click.echo(f"built {output}: kernel {cfg['release']}")


@cli.command(help="Show the syscall table (every x86-64 syscall with its status).")
@click.option("--markdown", is_flag=True, help="As docs/syscalls.md.")
def syscalls(markdown: bool) -> None:
    import importlib
    from umlpy.syscalls import table
    importlib.import_module("umlpy.syscalls")       # its modules fill the table
    if markdown:
        click.echo(table.markdown(), nl=False)
        return
    for nr, name, status, note in table.rows():
        click.echo(f"{nr:4d} {name:24s} {status:12s} {note}")


def _mconsole_command(umid: str, uml_dir: str | None, cmd: str) -> None:
    """Send cmd to the machine UMID's mconsole (UMID may be the socket's
    path) and print its answer; its error is ours."""
    from arch_um import mconsole
    from arch_um.umid import default_uml_dir
    sock = umid if "/" in umid else os.path.join(uml_dir or default_uml_dir(), umid, "mconsole")
    try:
        err, text = mconsole.request(sock, cmd)
    except OSError as e:
        raise click.ClickException(f"{sock}: {e.strerror or e}") from None
    if err:
        raise click.ClickException(text)
    click.echo(text)


@cli.command(help="Checkpoint a running machine (its mconsole `checkpoint` command): "
                  "its processes and memory go to DIR (docs/checkpoint.md); the machine then halts "
                  "unless --leave-running.  UMID may also be the mconsole socket's path.")
@click.argument("umid")
@click.argument("directory")
@click.option("--leave-running", is_flag=True, help="Resume the guest after the checkpoint.")
@click.option("--uml-dir", default=None, help="The machines' directory (default ~/.uml, as uml_dir=).")
def checkpoint(umid: str, directory: str, leave_running: bool, uml_dir: str | None) -> None:
    _mconsole_command(umid, uml_dir,
                      f"checkpoint {os.path.abspath(directory)}" + (" --leave-running" if leave_running else ""))


@cli.command(help="Live-migrate a running machine (its mconsole `migrate` command) to TARGET: the unix "
                  "socket a `umlpy restore --listen` waits on (memory is copied while the guest runs, "
                  "then the guest stops for the last copy; the downtime is reported), or a directory "
                  "(a checkpoint).  The machine halts once the target runs it.")
@click.argument("umid")
@click.argument("target")
@click.option("--uml-dir", default=None, help="The machines' directory (default ~/.uml, as uml_dir=).")
def migrate(umid: str, target: str, uml_dir: str | None) -> None:
    _mconsole_command(umid, uml_dir, f"migrate {os.path.abspath(target)}")


@cli.command(context_settings={"ignore_unknown_options": True},
             help="Restore a machine from a checkpoint DIR: boots KERNEL with the command line saved in "
                  "the image (PARAMS such as ubd0=FILE or umid=NAME override it) and rebuilds its "
                  "processes instead of running init.  With --listen SOCKET, wait there for a machine "
                  "`umlpy migrate` sends (DIR, if given, keeps the image it makes).")
@click.argument("directory", required=False)
@click.argument("params", nargs=-1, type=click.UNPROCESSED)
@click.option("--kernel", default="linux-um", show_default=True, help="The kernel image to boot.")
@click.option("--listen", default=None, metavar="SOCKET", help="Receive a live migration on this unix socket.")
def restore(directory: str | None, params: tuple[str, ...], kernel: str, listen: str | None) -> None:
    from umlpy_cli.image import restore_words
    if not os.path.exists(kernel):
        raise click.ClickException(f"{kernel}: no such kernel image")
    if listen is not None:
        if directory is not None and "=" in directory:     # a parameter, no directory given
            directory, params = None, (directory, *params)
        sys.exit(_restore_migrated(kernel, listen, directory, list(params)))
    if directory is None:
        raise click.ClickException("a checkpoint directory (or --listen SOCKET) is needed")
    try:
        words = restore_words(directory, list(params))
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{directory}: not a checkpoint image ({e})") from None
    sys.exit(run_image(kernel, words))


def _restore_migrated(kernel: str, listen: str, directory: str | None, params: list[str]) -> int:
    """Wait for a migrating machine at listen, make its image (in directory,
    else a temporary one, removed once the restore has read it) and boot
    it, telling the source when its processes are rebuilt."""
    import shutil
    import tempfile

    from arch_um import migwire
    from umlpy_cli.image import as_parameters, load_kernel, read_config, restore_words
    config = read_config(kernel)
    boot = load_kernel(kernel)      # imported now, not in the downtime
    boot.preload()
    from umlpy.checkpoint.prebuild import Prebuilt
    from umlpy_cli.receive import receive
    # a temporary image lives in memory, where /dev/shm offers it, so that
    # a big machine's pages do not wait for the host's writeback
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    tmp = None if directory else tempfile.mkdtemp(prefix="umlpy-migration-", dir=shm)
    where = directory or tmp
    try:
        try:
            conn = migwire.accept_one(listen)
        except OSError as e:
            raise click.ClickException(f"{listen}: {e.strerror or e}") from None
        pre = Prebuilt()        # the processes' host memory, made as the pages come
        try:
            receive(conn, where, config["release"], pre)
            words = restore_words(where, params)
        except (migwire.WireError, OSError, ValueError) as e:
            pre.discard()
            conn.close()
            raise click.ClickException(f"migration: {e}") from None

        def restored() -> None:
            try:
                conn.send({"t": "running"})
            except migwire.WireError as e:
                sys.stderr.write(f"umlpy: migration: could not tell the source ({e})\n")
            conn.close()
            # after the word, not in the downtime: freeing a big machine's
            # image (256 MiB of /dev/shm) takes tens of ms
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return boot.start_kernel(config, as_parameters(words), on_restored=restored, prebuilt=pre)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """`umlpy` and `python -m umlpy` alike."""
    sys.exit(quiet_on_closed_pipe(_dispatch))


def _dispatch() -> int | None:
    args = sys.argv[1:]
    # A first word that is not a subcommand is a kernel image (after options
    # for the boot: `umlpy --pdb ./linux-um`): booting bypasses click so that
    # the kernel gets its command line untouched (`--` included).
    n = 0
    while n < len(args) and args[n] in BOOT_OPTIONS:
        n += 1
    if n < len(args) and args[n] not in cli.commands and not args[n].startswith("-"):
        if not os.path.exists(args[n]):
            sys.stderr.write(f"umlpy: {args[n]}: no such kernel image\n")
            return 2
        return run_image(args[n], args[:n] + args[n + 1:])
    return cli(args, prog_name="umlpy", standalone_mode=True)


if __name__ == "__main__":
    main()
