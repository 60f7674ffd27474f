"""cx-stream: live customer-satisfaction KPIs from survey events (Kafka, Faust, Prometheus)."""
