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


@cli.command(help="Checkpoint a running machine (its mconsole `checkpoint` command): "
                  "its processes and memory go to DIR (docs/checkpoint.md); the machine then halts "
                  "unless --leave-running.  UMID may also be the mconsole socket's path.")
@click.argument("umid")
@click.argument("directory")
@click.option("--leave-running", is_flag=True, help="Resume the guest after the checkpoint.")
@click.option("--uml-dir", default=None, help="The machines' directory (default ~/.uml, as uml_dir=).")
def checkpoint(umid: str, directory: str, leave_running: bool, uml_dir: str | None) -> None:
    from arch_um import mconsole
    from arch_um.umid import default_uml_dir
    sock = umid if "/" in umid else os.path.join(uml_dir or default_uml_dir(), umid, "mconsole")
    cmd = f"checkpoint {os.path.abspath(directory)}" + (" --leave-running" if leave_running else "")
    try:
        err, text = mconsole.request(sock, cmd)
    except OSError as e:
        raise click.ClickException(f"{sock}: {e.strerror or e}") from None
    if err:
        raise click.ClickException(text)
    click.echo(text)


@cli.command(context_settings={"ignore_unknown_options": True},
             help="Restore a machine from a checkpoint DIR: boots KERNEL with the command line saved in "
                  "the image (PARAMS such as ubd0=FILE or umid=NAME override it) and rebuilds its "
                  "processes instead of running init.")
@click.argument("directory")
@click.argument("params", nargs=-1, type=click.UNPROCESSED)
@click.option("--kernel", default="linux-um", show_default=True, help="The kernel image to boot.")
def restore(directory: str, params: tuple[str, ...], kernel: str) -> None:
    from umlpy_cli.image import restore_words
    if not os.path.exists(kernel):
        raise click.ClickException(f"{kernel}: no such kernel image")
    try:
        words = restore_words(directory, list(params))
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{directory}: not a checkpoint image ({e})") from None
    sys.exit(run_image(kernel, words))


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
