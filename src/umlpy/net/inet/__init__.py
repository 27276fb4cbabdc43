"""AF_INET and AF_INET6 sockets at socket level (see docs/networking.md)."""
