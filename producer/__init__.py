"""Publishing customer events to Kafka, and replaying dead letters to the events topic."""
