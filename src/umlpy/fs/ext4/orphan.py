"""The orphan list and the orphan file (Linux's fs/ext4/orphan.c).

An inode whose last link goes while it is still open, an O_TMPFILE
inode, and a file being truncated are "orphans": a crash before the
inode is freed (or the truncate finished) would leave blocks and an
inode nobody can reach.  So, in the same journal transaction as the
unlink (or the start of the truncate), the inode is recorded on disk:

- with the orphan_file feature, in a free slot of the orphan file (the
  inode s_orphan_file_inum, whose every block holds inode numbers, then
  a tail of magic and crc32c over the block's physical number and its
  slots, seeded with the orphan file inode's own seed), while the
  ro_compat flag orphan_present says, during a read-write mount, that
  slots may be in use;
- otherwise (or when the orphan file is full) at the head of the list
  that starts at s_last_orphan in the superblock and goes on through each
  orphan's i_dtime (NEXT_ORPHAN).

It comes off when the inode is freed or the truncate is done.  Only a
journalled mount records orphans (ext4_orphan_add needs a journal: without
one nothing is atomic and e2fsck frees what is left).  At mount, after
the journal is replayed, `cleanup` walks both and does what the crash
prevented: inodes with no link are freed, linked ones truncated to
i_size (ext4_orphan_cleanup, with its log lines).  A read-only mount does
it too, as Linux does ("orphan cleanup on readonly fs"), unless the
device is write-protected or the filesystem has errors or features a
read-write mount would refuse.

The image is untrusted: orphan inode numbers are range-checked, must be
in use in their group's bitmap, and the chain is walked at most once per
inode (a cycle ends it), as ext4_orphan_get checks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.alloc import count_set
from umlpy.fs.ext4 import csum
from umlpy.fs.ext4 import layout as X
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs
    from umlpy.fs.ext4.inode import Ext4Inode


class OrphanFile:
    """The orphan file's blocks: where each lives and how many slots are free."""

    def __init__(self, fs: Ext4Fs) -> None:
        self.fs = fs
        sb = fs.sb
        ino = sb.orphan_file_inum
        if not sb.first_data_block < ino <= sb.inodes_count:
            raise KernelError(E.EUCLEAN, f"bad orphan file inode {ino}")
        inode = fs.iget(ino)
        if not inode.is_reg:
            raise KernelError(E.EUCLEAN, "the orphan file is not a regular file")
        self.per_block = (fs.block_size - X.ORPHAN_TAIL_SIZE) // 4
        self.seed = inode.csum_seed()
        n = inode.size() // fs.block_size
        self.blocks = fs.bmap.map(inode, 0, n)
        self.free: list[int] = []
        for i, blk in enumerate(self.blocks):
            if not fs.sb.first_data_block <= blk < fs.sb.blocks_count:
                raise KernelError(E.EIO, f"orphan file block {i}: not mapped")
            buf = fs.bcache.get(blk)
            magic, stored = X.ORPHAN_TAIL.unpack_from(buf, fs.block_size - X.ORPHAN_TAIL_SIZE)
            if magic != X.ORPHAN_MAGIC:
                raise KernelError(E.EIO, f"orphan file block {i}: bad magic")
            if fs.metadata_csum and stored != self._csum(blk, buf):
                raise KernelError(E.EIO, f"orphan file block {i}: bad checksum")
            self.free.append(self.slots(buf).count(0))

    def _csum(self, blk: int, buf: bytearray) -> int:
        return csum.orphan_block(self.seed, blk, memoryview(buf)[:self.per_block * 4])

    def slots(self, buf: bytearray) -> list[int]:
        return list(X.u32s(self.per_block).unpack_from(buf))

    def empty(self) -> bool:
        return all(f == self.per_block for f in self.free)

    def get(self, i: int) -> bytearray:
        """Block i of the orphan file, sealed with its checksum when written."""
        blk = self.blocks[i]
        buf = self.fs.bcache.get(blk)
        if self.fs.metadata_csum:
            tail = self.fs.block_size - X.ORPHAN_TAIL_SIZE + 4
            self.fs.bcache.set_sealer(blk, lambda b: L.U32.pack_into(b, tail, self._csum(blk, b)))
        return buf

    def put(self, i: int, j: int, ino: int) -> None:
        """Slot j of block i holds ino now (0: free)."""
        buf = self.get(i)
        L.U32.pack_into(buf, j * 4, ino)
        self.fs.bcache.mark_dirty(self.blocks[i], buf)

    def add(self, ino: int) -> int | None:
        """A free slot now holding ino (its index), or None when the file is full."""
        for i, free in enumerate(self.free):
            if free:
                j = self.slots(self.get(i)).index(0)
                self.free[i] -= 1
                self.put(i, j, ino)
                return i * self.per_block + j
        return None

    def remove(self, idx: int) -> None:
        i, j = divmod(idx, self.per_block)
        if i < len(self.blocks):
            self.put(i, j, 0)
            self.free[i] += 1


class Orphans:
    """The orphans of one mount: s_orphan (the on-disk list, newest first)
    and the orphan file's slots (inode.orphan_slot)."""

    def __init__(self, fs: Ext4Fs) -> None:
        self.fs = fs
        self.chain: list[Ext4Inode] = []
        self.file = OrphanFile(fs) if fs.sb.feature_compat & X.COMPAT_ORPHAN_FILE else None

    def empty(self) -> bool:
        return not self.fs.sb.last_orphan and (self.file is None or self.file.empty())

    def unprocessed(self) -> bool:
        """Orphans on disk that no inode of this mount stands for (a
        read-only mount that skipped the cleanup)."""
        in_file = self.file is not None and not self.file.empty()
        return bool(self.fs.sb.last_orphan) and not self.chain or in_file and not any(
            i.orphan_slot is not None for i in self.fs.icache.values())   # type: ignore[attr-defined]

    def add(self, inode: Ext4Inode) -> None:
        """ext4_orphan_add: record inode, in the running transaction."""
        fs = self.fs
        if fs.journal is None or inode.orphan_slot is not None or inode in self.chain:
            return
        if self.file is not None:
            inode.orphan_slot = self.file.add(inode.ino)
            if inode.orphan_slot is not None:
                return
        inode.dtime = fs.sb.last_orphan         # NEXT_ORPHAN
        fs.sb.last_orphan = inode.ino
        self.chain.insert(0, inode)

    def remove(self, inode: Ext4Inode) -> None:
        """ext4_orphan_del: the inode is freed, or its truncate is done."""
        if inode.orphan_slot is not None:
            if self.file is not None:
                self.file.remove(inode.orphan_slot)
            inode.orphan_slot = None
            return
        if inode not in self.chain:
            return
        k = self.chain.index(inode)
        self.chain.pop(k)
        if k == 0:
            self.fs.sb.last_orphan = inode.dtime
        else:
            self.chain[k - 1].dtime = inode.dtime
        inode.dtime = 0

    # -- at mount ---------------------------------------------------------------------
    def cleanup(self) -> None:
        """ext4_orphan_cleanup: finish what a crash left undone."""
        fs = self.fs
        if self.empty():
            return
        say = fs.msg
        if fs.device.write_protected:
            say("write access unavailable, skipping orphan cleanup", printk.pr_err)
            return
        if not fs.rw_mountable():
            say("Skipping orphan cleanup due to unknown ROCOMPAT features")
            return
        if fs.sb.state & L.STATE_ERROR:
            if fs.sb.last_orphan and not fs.read_only:
                say("Errors on filesystem, clearing orphan list.")
                fs.sb.last_orphan = 0
            return
        read_only = fs.read_only
        if read_only:
            say("orphan cleanup on readonly fs")
            fs.read_only = False
            fs._while_mounted()
        deleted = truncated = 0
        seen: set[int] = set()
        while fs.sb.last_orphan:
            ino = fs.sb.last_orphan
            inode = self._get(ino) if ino not in seen else None
            if inode is None:
                fs.sb.last_orphan = 0
                break
            seen.add(ino)
            self.chain.insert(0, inode)
            if self._process(inode):
                deleted += 1
            else:
                truncated += 1
            if fs.sb.last_orphan == ino:       # not taken off (a cycle through itself)
                fs.sb.last_orphan = 0
        if self.file is not None:
            per = self.file.per_block
            for i in range(len(self.file.blocks)):
                for j, ino in enumerate(self.file.slots(self.file.get(i))):
                    inode = self._get(ino) if ino else None
                    if inode is None:
                        continue
                    inode.orphan_slot = i * per + j
                    if self._process(inode):
                        deleted += 1
                    else:
                        truncated += 1
        if deleted:
            say(f"{deleted} orphan inode{'' if deleted == 1 else 's'} deleted")
        if truncated:
            say(f"{truncated} truncate{'' if truncated == 1 else 's'} cleaned up")
        if read_only:
            fs._mark_clean()
            fs.read_only = True
        else:
            fs.commit()

    def _get(self, ino: int) -> Ext4Inode | None:
        """ext4_orphan_get: an orphan the image names, if it is one at all."""
        fs, sb = self.fs, self.fs.sb
        if not sb.first_inode <= ino <= sb.inodes_count:
            fs.msg(f"bad orphan inode {ino}", printk.pr_warn)
            return None
        g, bit = divmod(ino - 1, sb.inodes_per_group)
        if not count_set(fs.inode_bitmap(g), bit, 1):
            fs.msg(f"bad orphan inode {ino}", printk.pr_warn)
            return None
        try:
            return fs.orphan_iget(ino)
        except KernelError as e:
            fs.msg(f"bad orphan inode {ino}: {e}", printk.pr_warn)
            return None

    def _process(self, inode: Ext4Inode) -> bool:
        """ext4_process_orphan: free an unlinked inode (True) or finish the
        truncate of a linked one to its i_size (False).  One that cannot be
        (a corrupt block map, an immutable file) is only taken off the list,
        left for e2fsck, as Linux's error path does."""
        try:
            if inode.nlink:
                inode.finish_truncate()
                return False
            inode.release()
            return True
        except KernelError as e:
            self.fs.msg(f"orphan inode {inode.ino}: {e}", printk.pr_warn)
            return bool(not inode.nlink)
        finally:
            self.remove(inode)
