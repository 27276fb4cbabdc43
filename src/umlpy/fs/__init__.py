"""Filesystems, one module each, behind the VFS interface (umlpy.vfs.inode)."""
