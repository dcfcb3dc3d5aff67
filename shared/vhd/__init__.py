"""The VHD preflight: footer parsing and checks from a 512-byte range read."""
