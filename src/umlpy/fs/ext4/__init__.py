"""ext4: htree (the dir_index directory index) and dirhash (its name hashes)."""
