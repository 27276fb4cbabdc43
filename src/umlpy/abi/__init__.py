"""Linux x86-64 ABI: numbers, flags and struct layouts, kept apart from logic."""
