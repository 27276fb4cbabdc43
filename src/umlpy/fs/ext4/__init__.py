"""ext4 (and ext3) read-write, built on fs/ext2's driver.

    fs = mount_ext4(block_device, read_only=False)      # or name="ext3"

Modules: layout (64-bit superblock and descriptors, extent, dirent-tail
and journal structs), csum (metadata checksums), extents (extent trees
behind the block-map interface), alloc (uninitialised groups), dir
(directories: linear ones with checksum tails, indexed ones through htree
over the inode's blocks), inode (Ext4Inode), journal (metadata journalled
through fs/jbd2, ordered mode), delalloc (delayed allocation), fs (Ext4Fs: features, journal check,
checksums on read and write), dirhash (Linux's directory hashes), htree
(the dir_index tree: lookup, insert with splits, remove, retarget,
make_indexed, readdir in hash order).
"""
from umlpy.fs.ext4.fs import Ext4Fs, mount_ext4
from umlpy.fs.ext4.inode import Ext4Inode

__all__ = ["Ext4Fs", "Ext4Inode", "mount_ext4"]
