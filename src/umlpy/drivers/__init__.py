"""Device drivers; their host halves live in arch_um."""
