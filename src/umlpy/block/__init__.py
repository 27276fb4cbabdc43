"""The block layer: devices filesystems read and write, and the buffer cache."""
