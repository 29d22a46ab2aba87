"""Publishing customer events (and their observed outcomes) to Kafka; replaying dead letters."""
