"""Kafka plumbing shared by the producer and the scorer.

Client options, topic admin and reading, record shapes, the delivery sink,
consumer lag, the broker watch, and end offsets that hold on the embedded broker.
"""
