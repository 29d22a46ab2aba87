"""Observed outcomes: one :class:`CustomerOutcome` per customer whose churn was observed.

Records on the ``customer-outcomes`` topic are keyed by ``customer_id`` like the
events, and ``churn quality`` joins each one with the recent predictions for that
customer. ``customer_id`` follows the rules of the event's; ``churned`` accepts the
forms CSV exports write (``Yes``/``No``, ``1``/``0``, ``true``/``false``, booleans);
``observed_at`` is optional and defaults to the record's timestamp. Unknown fields are
ignored, as on the events topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from schemas.events import Identifier, aware, flag_value
from schemas.features import SCHEMA_VERSION


def _churned(value: Any) -> Any:
    try:
        flag = flag_value(value)
    except ValueError:
        raise ValueError("must be Yes/No, 1/0, true/false or a boolean") from None
    if isinstance(flag, int) and not isinstance(flag, bool) and flag in (0, 1):
        return bool(flag)
    return flag


class CustomerOutcome(BaseModel):
    """Whether a customer churned, as observed at ``observed_at`` (key = ``customer_id``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    customer_id: Identifier = Field(validation_alias=AliasChoices("customer_id", "customerID"))
    churned: Annotated[bool, BeforeValidator(_churned)] = Field(
        validation_alias=AliasChoices("churned", "Churn", "churn"),
        description="true if the customer churned; CSV forms Yes/No, 1/0, true/false are accepted",
    )
    observed_at: datetime | None = Field(
        default=None, description="when the outcome was observed; the record timestamp when absent"
    )
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)

    @field_validator("observed_at")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return None if value is None else aware(value)
