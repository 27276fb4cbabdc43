"""Networking in the kernel: AF_UNIX sockets (other families come later)."""
