"""The monitoring mixin of cx-stream: config.yml and the generators of the files beside it."""
