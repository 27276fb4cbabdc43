"""The kernel core: tasks, scheduling, signals, memory, exec, the log."""
