"""The VFS: inodes, dentries, mounts, path walk, open files and fd tables.

Filesystems (umlpy.fs.*) implement `Inode` and `Filesystem`; everything
above them (path walk, permission checks, fds, pipes) lives here.
"""
