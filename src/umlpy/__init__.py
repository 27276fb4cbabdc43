"""umlpy: the guest kernel (host-independent; the host is reached only through arch_um)."""
