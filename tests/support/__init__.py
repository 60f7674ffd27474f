"""Test helpers: the session broker, worker subprocesses and Kafka I/O."""
