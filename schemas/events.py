"""Wire-format model of the input: one customer event, on the topic, in a request or a CSV row.

Field names are snake_case; the column names of the public telco
customer-churn CSV are accepted as aliases, and values as CSV exports write
them (numbers as text, a blank ``TotalCharges``, ``SeniorCitizen`` as 0/1 or
Yes/No). ``event_id`` and ``event_time`` are optional: whoever reads the event
fills them (the stream from the record's coordinates and timestamp, the API
with a fresh id and the time of the request). Unknown fields are ignored so
that producers can add fields before consumers know them.

:mod:`schemas.contract` is the one entry point that turns bytes or a parsed
row into a :class:`CustomerEvent` or a rejection; docs/contract.md has the
table of what is accepted and refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

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

#: ASCII whitespace, trimmed around numbers written as text (the telco file writes " " for blank).
ASCII_SPACE: Final = " \t\n\r\x0b\x0c"
#: A number written as text: ASCII decimal digits, an optional sign, fraction and exponent.
NUMBER_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]{1,18}")
_NON_FINITE_TEXT: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Characters no id may hold: C0 and C1 controls, DEL, and the bidirectional formatting
#: characters that make an id display as something else (Trojan Source, CVE-2021-42574).
FORBIDDEN_ID_CHARACTERS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
ID_MAX_LENGTH: Final = 128

#: Words ``senior_citizen`` takes as text (case-insensitive).
_FLAG_WORDS: Final = {"0": 0, "1": 1, "no": 0, "yes": 1, "false": 0, "true": 1}


def _alias(name: str) -> Any:
    """Accept both the snake_case name and the telco column name on input."""
    telco = TELCO_ALIASES[name]
    if telco == name:
        return None
    return AliasChoices(name, telco)


def _blank() -> PydanticCustomError:
    return PydanticCustomError("blank", "a value is required; the text is blank")


def number_from_text(value: str) -> int | float | None:
    """The number a text holds, as the same JSON number would be read; None when it is blank.

    Trimmed of ASCII whitespace, the text must be a decimal number in ASCII digits
    (``"12"``, ``"29.85"``, ``"-1"``, ``"1e2"``); whole numbers of up to 18 digits
    are read exactly, others as a float. ``NaN``/``Infinity`` and overflowing
    numbers are not finite; anything else (``"1,000"``, ``"1_000"``, ``"0x10"``,
    other scripts' digits) is not a number.
    """
    text = value.strip(ASCII_SPACE)
    if not text:
        return None
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if NUMBER_TEXT.fullmatch(text):
        number = float(text)
        if number in (float("inf"), float("-inf")):
            raise PydanticCustomError("finite_number", "Input should be a finite number")
        return number
    if _NON_FINITE_TEXT.fullmatch(text):
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    raise PydanticCustomError("float_parsing", "Input should be a number in decimal digits, e.g. 42 or 29.85")


def _number(value: Any) -> Any:
    """A JSON number, or text holding one; booleans are refused (pydantic would read True as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, str):
        number = number_from_text(value)
        if number is None:
            raise _blank()
        return number
    return value


def _optional_number(value: Any) -> Any:
    """Like :func:`_number`, but blank text means "not known" (brand-new customers' TotalCharges)."""
    if isinstance(value, str):
        return number_from_text(value)
    return _number(value)


def _trimmed(value: Any) -> Any:
    """Vocabulary text is read trimmed of ASCII whitespace (``" Yes"`` is ``"Yes"``), as numbers are."""
    return value.strip(ASCII_SPACE) if isinstance(value, str) else value


def _yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return _trimmed(value)


def flag_value(value: Any) -> Any:
    """0/1, booleans, "0"/"1", "Yes"/"No" and "true"/"false" all mean the same flag."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip(ASCII_SPACE)
        word = _FLAG_WORDS.get(text.lower())
        if word is not None:
            return word
        if not text:
            raise _blank()
        if not NUMBER_TEXT.fullmatch(text):
            raise ValueError("must be 0 or 1, Yes or No, true or false")
        value = number_from_text(text)
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    return value


def _id_is_text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string")
    return str(value)


def _printable_id(value: str) -> str:
    """Refuse control and bidirectional-formatting characters (after surrounding whitespace is trimmed)."""
    bad = FORBIDDEN_ID_CHARACTERS.search(value)
    if bad is not None:
        where = f"U+{ord(bad.group()):04X} at position {bad.start()}"
        raise PydanticCustomError(
            "invalid_characters",
            f"must not contain control or bidirectional-formatting characters ({where})",
        )
    return value


def aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


YesNoField = Annotated[YesNo, BeforeValidator(_yes_no)]
GenderField = Annotated[Gender, BeforeValidator(_trimmed)]
MultipleLinesField = Annotated[MultipleLines, BeforeValidator(_trimmed)]
InternetServiceField = Annotated[InternetService, BeforeValidator(_trimmed)]
InternetAddonField = Annotated[InternetAddon, BeforeValidator(_trimmed)]
ContractField = Annotated[Contract, BeforeValidator(_trimmed)]
PaymentMethodField = Annotated[PaymentMethod, BeforeValidator(_trimmed)]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_LENGTH),
    BeforeValidator(_id_is_text),
    AfterValidator(_printable_id),
]

_TENURE = NUMERIC_RANGES["tenure"]
_MONTHLY = NUMERIC_RANGES["monthly_charges"]
_TOTAL = NUMERIC_RANGES["total_charges"]


class CustomerEvent(BaseModel):
    """One customer event: the model input, the customer id and, optionally, the event's id and time.

    ``event_id`` and ``event_time`` are ``None`` when the sender left them out;
    :mod:`schemas.contract` says how each entry point fills them.
    """

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,
        str_strip_whitespace=True,
        title="CustomerEvent",
    )

    customer_id: Identifier = Field(validation_alias=_alias("customer_id"))
    gender: GenderField
    senior_citizen: Annotated[int, BeforeValidator(flag_value)] = Field(
        ge=0, le=1, validation_alias=_alias("senior_citizen")
    )
    partner: YesNoField = Field(validation_alias=_alias("partner"))
    dependents: YesNoField = Field(validation_alias=_alias("dependents"))
    tenure: Annotated[int, BeforeValidator(_number)] = Field(ge=_TENURE[0], le=_TENURE[1])
    phone_service: YesNoField = Field(validation_alias=_alias("phone_service"))
    multiple_lines: MultipleLinesField = Field(validation_alias=_alias("multiple_lines"))
    internet_service: InternetServiceField = Field(validation_alias=_alias("internet_service"))
    online_security: InternetAddonField = Field(validation_alias=_alias("online_security"))
    online_backup: InternetAddonField = Field(validation_alias=_alias("online_backup"))
    device_protection: InternetAddonField = Field(validation_alias=_alias("device_protection"))
    tech_support: InternetAddonField = Field(validation_alias=_alias("tech_support"))
    streaming_tv: InternetAddonField = Field(validation_alias=_alias("streaming_tv"))
    streaming_movies: InternetAddonField = Field(validation_alias=_alias("streaming_movies"))
    contract: ContractField = Field(validation_alias=_alias("contract"))
    paperless_billing: YesNoField = Field(validation_alias=_alias("paperless_billing"))
    payment_method: PaymentMethodField = Field(validation_alias=_alias("payment_method"))
    monthly_charges: Annotated[float, BeforeValidator(_number)] = Field(
        validation_alias=_alias("monthly_charges"), ge=_MONTHLY[0], le=_MONTHLY[1]
    )
    total_charges: Annotated[float | None, BeforeValidator(_optional_number)] = Field(
        default=None,
        validation_alias=_alias("total_charges"),
        ge=_TOTAL[0],
        le=_TOTAL[1],
    )
    schema_version: Annotated[int, BeforeValidator(_number)] = Field(default=SCHEMA_VERSION, ge=1)
    event_id: Identifier | None = None
    event_time: datetime | None = None

    @field_validator("event_time")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return aware(value)
