"""Debugging guest processes from the host: the gdb server (gdbstub.py)."""
