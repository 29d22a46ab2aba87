"""The AsyncAPI 3.0 document of the scorer: its three topics, keys, headers and payloads.

Built as data from the same models and settings defaults the code uses; the
payloads refer (``$ref``) to the JSON Schema documents of :mod:`schemas.json_schema`,
published next to it (``docs/schemas/*.json``). ``churn contract export`` writes it to
``docs/asyncapi.yaml``.
"""

from __future__ import annotations

from typing import Any, Final

from schemas.features import SCHEMA_VERSION
from schemas.json_schema import DEAD_LETTER, EVENT, OUTCOME, PREDICTION

#: The topics' default names (``CHURN_EVENTS_TOPIC``, ... configure them).
EVENTS_TOPIC: Final = "customer-events"
PREDICTIONS_TOPIC: Final = "churn-predictions"
DLQ_TOPIC: Final = "customer-events-dlq"
OUTCOMES_TOPIC: Final = "customer-outcomes"

_KAFKA_BINDING: Final = "0.5.0"

_DESCRIPTION: Final = "\n\n".join(
    [
        "churn-stream's scorer reads customer events from one topic and writes, for every record it "
        "reads, exactly one outcome: a churn prediction, or a dead letter that keeps the original "
        "bytes and says why.",
        "Delivery is at-least-once: an input offset is committed only after its prediction or dead "
        "letter was acknowledged by the broker (acks=all), so nothing is lost, and a crash or a "
        "rebalance can write an outcome twice. Consumers deduplicate predictions by event_id.",
        "An event without event_id gets `topic:partition:offset` (for example "
        "`customer-events:3:1042`), which a re-read of the same record yields again; one without "
        "event_time gets the record's timestamp.",
        "Observed outcomes (did the customer churn?) arrive on their own topic; `churn quality` "
        "joins them with the predictions to measure the model on live traffic.",
        "Topic names are the defaults; CHURN_EVENTS_TOPIC, CHURN_PREDICTIONS_TOPIC, "
        "CHURN_DLQ_TOPIC and CHURN_OUTCOMES_TOPIC change them. What the input accepts and "
        "refuses, with each error_type: docs/contract.md.",
    ]
)


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def _schema_file(name: str) -> dict[str, str]:
    return _ref(f"schemas/{name}.json")


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document as plain data (ready for ``yaml.safe_dump``)."""
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "churn-stream scorer",
            "version": str(SCHEMA_VERSION),
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "Apache Kafka (or the embedded development broker); "
                "CHURN_KAFKA_BOOTSTRAP_SERVERS sets the address.",
            }
        },
        "channels": {
            "customerEvents": {
                "address": EVENTS_TOPIC,
                "description": "Customer events to score.",
                "messages": {"customerEvent": _ref("#/components/messages/customerEvent")},
                "bindings": {"kafka": {"topic": EVENTS_TOPIC, "bindingVersion": _KAFKA_BINDING}},
            },
            "churnPredictions": {
                "address": PREDICTIONS_TOPIC,
                "description": "One prediction per scored event.",
                "messages": {"churnPrediction": _ref("#/components/messages/churnPrediction")},
                "bindings": {"kafka": {"topic": PREDICTIONS_TOPIC, "bindingVersion": _KAFKA_BINDING}},
            },
            "deadLetters": {
                "address": DLQ_TOPIC,
                "description": "Records that could not be scored: original key and bytes, reason headers.",
                "messages": {"deadLetter": _ref("#/components/messages/deadLetter")},
                "bindings": {"kafka": {"topic": DLQ_TOPIC, "bindingVersion": _KAFKA_BINDING}},
            },
            "customerOutcomes": {
                "address": OUTCOMES_TOPIC,
                "description": "Observed churn per customer, joined with the predictions by churn quality.",
                "messages": {"customerOutcome": _ref("#/components/messages/customerOutcome")},
                "bindings": {"kafka": {"topic": OUTCOMES_TOPIC, "bindingVersion": _KAFKA_BINDING}},
            },
        },
        "operations": {
            "scoreCustomerEvents": {
                "action": "receive",
                "channel": _ref("#/channels/customerEvents"),
                "summary": "The scorer reads every event (consumer group CHURN_SCORER_APP_ID).",
                "messages": [_ref("#/channels/customerEvents/messages/customerEvent")],
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "default": "churn-scorer"},
                        "bindingVersion": _KAFKA_BINDING,
                    }
                },
            },
            "writePredictions": {
                "action": "send",
                "channel": _ref("#/channels/churnPredictions"),
                "summary": "A prediction for each valid event, keyed by customer_id.",
                "messages": [_ref("#/channels/churnPredictions/messages/churnPrediction")],
            },
            "writeDeadLetters": {
                "action": "send",
                "channel": _ref("#/channels/deadLetters"),
                "summary": "A dead letter for each record that cannot be scored, whatever its bytes.",
                "messages": [_ref("#/channels/deadLetters/messages/deadLetter")],
            },
            "readOutcomes": {
                "action": "receive",
                "channel": _ref("#/channels/customerOutcomes"),
                "summary": "The quality job (churn quality) reads every observed outcome.",
                "messages": [_ref("#/channels/customerOutcomes/messages/customerOutcome")],
            },
        },
        "components": {
            "messages": {
                "customerEvent": {
                    "name": "CustomerEvent",
                    "title": "Customer event",
                    "contentType": "application/json",
                    "summary": "A customer's attributes; event_id, event_time and the key are optional.",
                    "payload": _schema_file(EVENT),
                    "bindings": {
                        "kafka": {
                            "key": {
                                "type": ["string", "null"],
                                "description": "Optional. Keying by customer_id keeps one customer's "
                                "events in order on one partition; unkeyed records are scored too.",
                            },
                            "bindingVersion": _KAFKA_BINDING,
                        }
                    },
                },
                "churnPrediction": {
                    "name": "ChurnPrediction",
                    "title": "Churn prediction",
                    "contentType": "application/json",
                    "payload": _schema_file(PREDICTION),
                    "headers": {
                        "type": "object",
                        "properties": {
                            "event_id": {"type": "string", "description": "the event_id of the body"},
                            "model_version": {"type": "string", "description": "the model that scored it"},
                        },
                        "required": ["event_id", "model_version"],
                    },
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": "the customer_id"},
                            "bindingVersion": _KAFKA_BINDING,
                        }
                    },
                },
                "deadLetter": {
                    "name": "DeadLetter",
                    "title": "Dead letter",
                    "contentType": "application/octet-stream",
                    "summary": "The original record's key and value bytes with reason headers; a value "
                    "over CHURN_DLQ_MAX_VALUE_BYTES is cut (headers truncated, original_size, "
                    "original_sha256).",
                    "payload": {"description": "the original record value: any bytes, or none"},
                    "headers": _schema_file(DEAD_LETTER),
                    "bindings": {
                        "kafka": {
                            "key": {"type": ["string", "null"], "description": "the original record's key"},
                            "bindingVersion": _KAFKA_BINDING,
                        }
                    },
                },
                "customerOutcome": {
                    "name": "CustomerOutcome",
                    "title": "Customer outcome",
                    "contentType": "application/json",
                    "summary": "Whether a customer churned, as observed at observed_at.",
                    "payload": _schema_file(OUTCOME),
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": "the customer_id"},
                            "bindingVersion": _KAFKA_BINDING,
                        }
                    },
                },
            }
        },
    }
