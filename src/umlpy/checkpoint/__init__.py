"""Checkpoint and restore of a whole machine (docs/checkpoint.md).

`image` is the on-disk format (a versioned, checksummed manifest and raw
memory files, every value validated on the way back); `dump` freezes the
guests and writes an image; `restore` rebuilds the processes of an image
in a freshly booted kernel instead of running init.
"""
