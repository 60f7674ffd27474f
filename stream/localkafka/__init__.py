"""A real single-node Apache Kafka (KRaft) on 127.0.0.1, resolved from Maven Central, no Docker."""

from stream.localkafka.broker import BrokerError, LocalBroker, SaslListener

__all__ = ["BrokerError", "LocalBroker", "SaslListener"]
