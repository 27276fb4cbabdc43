"""ext2 (and ext3, its journal replayed at mount), read-write, in pure Python.

    fs = mount_ext2(block_device, read_only=False)
    fs.root.lookup(b"etc") ... fs.sync() ... fs.unmount()

Modules: layout (on-disk structs), bcache (write-back buffer cache), alloc
(bitmaps and free counts), bmap (indirect block maps), dir (directory
blocks), xattr (extended attributes), inode (Ext2Inode), fs (Ext2Fs:
mount, sync, unmount), journal (the journal inode's map; replay at mount,
through fs/jbd2).
"""
from umlpy.fs.ext2.fs import Ext2Error, Ext2Fs, mount_ext2
from umlpy.fs.ext2.inode import Ext2Inode

__all__ = ["Ext2Error", "Ext2Fs", "Ext2Inode", "mount_ext2"]
