"""Reliability tests: crashes, security, personal data, on the real broker."""
