"""Wire-format models of the input: a customer event on the topic, a request to the API.

Field names are snake_case; the column names of the public telco
customer-churn CSV are accepted as aliases. Unknown fields are ignored so that
producers can add fields before consumers know them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from schemas.features import (
    NUMERIC_RANGES,
    SCHEMA_VERSION,
    TELCO_ALIASES,
    Contract,
    Gender,
    InternetAddon,
    InternetService,
    MultipleLines,
    PaymentMethod,
    YesNo,
)


def _alias(name: str) -> Any:
    """Accept both the snake_case name and the telco column name on input."""
    telco = TELCO_ALIASES[name]
    if telco == name:
        return None
    return AliasChoices(name, telco)


def _yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return value


def flag_value(value: Any) -> Any:
    """0/1, booleans, "0"/"1", "Yes"/"No" and "true"/"false" all mean the same flag (0 or 1)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        mapping = {"0": 0, "1": 1, "yes": 1, "no": 0, "true": 1, "false": 0}
        if text.lower() in mapping:
            return mapping[text.lower()]
        raise ValueError("must be 0 or 1 (or a boolean)")
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    return value


def _not_bool(value: Any) -> Any:
    """Reject booleans where a number is expected (pydantic would read True as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _blank_to_none(value: Any) -> Any:
    """The telco CSV leaves TotalCharges blank for brand-new customers."""
    if isinstance(value, str) and not value.strip():
        return None
    return _not_bool(value)


def customer_id_text(value: Any) -> Any:
    """A customer id is text; a whole number is taken as its decimal text, anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string")
    return str(value)


YesNoField = Annotated[YesNo, BeforeValidator(_yes_no)]
Number = Annotated[float, BeforeValidator(_not_bool)]


_TENURE = NUMERIC_RANGES["tenure"]
_MONTHLY = NUMERIC_RANGES["monthly_charges"]
_TOTAL = NUMERIC_RANGES["total_charges"]


class CustomerFeatures(BaseModel):
    """One customer's attributes: the model input plus the customer id."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,
        str_strip_whitespace=True,
    )

    customer_id: str = Field(min_length=1, max_length=128, validation_alias=_alias("customer_id"))
    gender: Gender
    senior_citizen: Annotated[int, BeforeValidator(flag_value)] = Field(
        ge=0, le=1, validation_alias=_alias("senior_citizen")
    )
    partner: YesNoField = Field(validation_alias=_alias("partner"))
    dependents: YesNoField = Field(validation_alias=_alias("dependents"))
    tenure: Annotated[int, BeforeValidator(_not_bool)] = Field(ge=_TENURE[0], le=_TENURE[1])
    phone_service: YesNoField = Field(validation_alias=_alias("phone_service"))
    multiple_lines: MultipleLines = Field(validation_alias=_alias("multiple_lines"))
    internet_service: InternetService = Field(validation_alias=_alias("internet_service"))
    online_security: InternetAddon = Field(validation_alias=_alias("online_security"))
    online_backup: InternetAddon = Field(validation_alias=_alias("online_backup"))
    device_protection: InternetAddon = Field(validation_alias=_alias("device_protection"))
    tech_support: InternetAddon = Field(validation_alias=_alias("tech_support"))
    streaming_tv: InternetAddon = Field(validation_alias=_alias("streaming_tv"))
    streaming_movies: InternetAddon = Field(validation_alias=_alias("streaming_movies"))
    contract: Contract = Field(validation_alias=_alias("contract"))
    paperless_billing: YesNoField = Field(validation_alias=_alias("paperless_billing"))
    payment_method: PaymentMethod = Field(validation_alias=_alias("payment_method"))
    monthly_charges: Number = Field(
        validation_alias=_alias("monthly_charges"), ge=_MONTHLY[0], le=_MONTHLY[1]
    )
    total_charges: Annotated[float | None, BeforeValidator(_blank_to_none)] = Field(
        default=None,
        validation_alias=_alias("total_charges"),
        ge=_TOTAL[0],
        le=_TOTAL[1],
    )
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)

    @field_validator("customer_id", mode="before")
    @classmethod
    def _id_is_text(cls, value: Any) -> Any:
        return customer_id_text(value)


def _new_event_id() -> str:
    return uuid.uuid4().hex


def _utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """``value`` with a time zone: naive date-times are taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CustomerEvent(CustomerFeatures):
    """A customer event on the ``customer-events`` topic: the features plus identity and time."""

    event_id: str = Field(min_length=1, max_length=128)
    event_time: datetime

    @field_validator("event_time")
    @classmethod
    def _tz(cls, value: datetime) -> datetime:
        return aware(value)


class PredictRequest(CustomerFeatures):
    """A synchronous scoring request: like an event, but id and time are optional."""

    event_id: str = Field(default_factory=_new_event_id, min_length=1, max_length=128)
    event_time: datetime = Field(default_factory=_utcnow)

    @field_validator("event_time")
    @classmethod
    def _tz(cls, value: datetime) -> datetime:
        return aware(value)
