"""jbd2: the ext3/ext4 journal, its on-disk format, recovery and a writer.

    j = Journal(block_device, block_size, journal_block_map, fs_blocks)
    recover(j)                       # replay a log that needs it; journal left empty
    w = JournalWriter(j)             # then: w.begin(credits).add(blocknr, data),
                                     # w.commit(), w.checkpoint(), w.close()

Modules: csum (crc32c and crc32_be as Linux computes them), format
(on-disk structs), journal (Journal: superblock checks, mapped block I/O),
recovery (jbd2_journal_recover's three passes), transaction (the writer:
commit, checkpoint).  The filesystem gives the
map from journal block to device block (fs/ext2/journal.py for ext2/ext3).
"""
from umlpy.fs.jbd2.journal import Journal, JournalError
from umlpy.fs.jbd2.recovery import RecoveryInfo, recover
from umlpy.fs.jbd2.transaction import JournalWriter, Transaction

__all__ = ["Journal", "JournalError", "JournalWriter", "RecoveryInfo", "Transaction", "recover"]
