"""slamon: a Kafka-native SLA monitor for service processes."""

__version__ = "0.1.0"
