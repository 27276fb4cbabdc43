"""The umlpy command: boots kernel images, builds them, shows the syscall table."""
