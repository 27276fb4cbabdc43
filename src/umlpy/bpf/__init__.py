"""eBPF: maps, the verifier and the interpreter behind bpf(2) and
SO_ATTACH_BPF (docs/architecture.md, "eBPF")."""
