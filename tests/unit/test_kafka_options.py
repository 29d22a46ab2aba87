"""Kafka client options: pass-through to every client, the project's own refused, Faust's mapping."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.kafka_options import CONSUMER_OWNED, PRODUCER_OWNED
from config.settings import Settings
from kafka_io.client_config import (
    FAUST_CONSUMER_OPTIONS,
    KafkaOptionError,
    confluent_consumer,
    confluent_producer,
    faust_consumer_settings,
)


def test_producers_are_fully_acknowledged_idempotent_when_asked_and_compress_as_configured() -> None:
    config = confluent_producer(Settings())
    defaults = (config["acks"], config["enable.idempotence"], config["compression.type"])
    assert defaults == ("all", False, "none")
    tuned = confluent_producer(Settings(kafka_enable_idempotence=True, kafka_compression="zstd"))
    assert (tuned["enable.idempotence"], tuned["compression.type"]) == (True, "zstd")


def test_pass_through_options_come_last_on_every_client() -> None:
    settings = Settings(
        kafka_consumer_options={"fetch.min.bytes": 65536, "client.id": "mine", "auto.offset.reset": "latest"},
        kafka_producer_options={"linger.ms": 50, "batch.num.messages": 2000, "acks": -1},
    )
    consumer = confluent_consumer(settings, "group", **{"client.id": "the-code's"})
    assert consumer["fetch.min.bytes"] == 65536
    assert consumer["client.id"] == "mine"  # the user's, over the code's default
    assert consumer["auto.offset.reset"] == "latest"
    assert consumer["group.id"] == "group" and consumer["enable.auto.commit"] is False
    producer = confluent_producer(settings, **{"linger.ms": 1})
    assert (producer["linger.ms"], producer["batch.num.messages"], producer["acks"]) == (50, 2000, -1)
    assert "fetch.min.bytes" not in producer and "linger.ms" not in consumer


@pytest.mark.parametrize("name", sorted(CONSUMER_OWNED))
def test_every_owned_consumer_option_is_refused_with_its_reason(name: str) -> None:
    with pytest.raises(ValidationError, match=name.replace(".", r"\.")) as refused:
        Settings(kafka_consumer_options={name: "x"})
    assert CONSUMER_OWNED[name] in str(refused.value)


@pytest.mark.parametrize("name", sorted(PRODUCER_OWNED))
def test_every_owned_producer_option_is_refused_with_its_reason(name: str) -> None:
    with pytest.raises(ValidationError, match=name.replace(".", r"\.")):
        Settings(kafka_producer_options={name: "x"})


@pytest.mark.parametrize("acks", ["0", "1", 1, 0, "leader"])
def test_acks_below_all_is_refused(acks: Any) -> None:
    with pytest.raises(ValidationError, match="acks stays all"):
        Settings(kafka_producer_options={"acks": acks})


def test_the_faust_engine_maps_what_aiokafka_has_and_names_what_it_has_not() -> None:
    settings = Settings(
        kafka_consumer_options={
            "client.id": "scorer-7",
            "max.partition.fetch.bytes": "2097152",
            "max.poll.interval.ms": 600000,
            "auto.offset.reset": "smallest",
            "check.crcs": "false",
        }
    )
    assert faust_consumer_settings(settings) == {
        "broker_client_id": "scorer-7",
        "consumer_max_fetch_size": 2097152,
        "broker_max_poll_interval": 600.0,
        "consumer_auto_offset_reset": "earliest",
        "broker_check_crcs": False,
    }
    odd = Settings(kafka_consumer_options={"fetch.min.bytes": 1, "queued.min.messages": 10, "client.id": "x"})
    with pytest.raises(KafkaOptionError, match="fetch.min.bytes, queued.min.messages") as refused:
        faust_consumer_settings(odd)
    assert "--engine native" in str(refused.value)
    with pytest.raises(KafkaOptionError, match="max.poll.interval.ms"):
        faust_consumer_settings(Settings(kafka_consumer_options={"max.poll.interval.ms": "soon"}))


def test_the_faust_apps_options_carry_the_mapping() -> None:
    from scorer.faust_engine import faust_consumer_options

    options = faust_consumer_options(Settings(kafka_consumer_options={"client.id": "scorer-7"}))
    assert options["broker_client_id"] == "scorer-7"
    assert set(FAUST_CONSUMER_OPTIONS) >= {"client.id", "max.partition.fetch.bytes", "auto.offset.reset"}
