"""The gateway daemon: MQTT ingest -> per-asset windows -> batched SLM inference -> disk outbox -> Kafka (+ MQTT)."""
