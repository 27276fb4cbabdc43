"""`python -m umlpy ...` is the `umlpy` command.

The command line tool lives above the kernel (umlpy_cli); this entry point
is run, never imported, so no kernel module depends on it, and kernel
images leave it out (umlpy_cli/image.py)."""
from umlpy_cli.main import main

main()
