"""The feature contract: column names, aliases, vocabularies and numeric ranges.

Everything that needs to know the shape of a customer record (the pydantic
models, the CSV loader, the frame validator, the feature encoder) reads it
from here, so the rules live in exactly one place.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

#: Bumped when the wire format changes incompatibly.
SCHEMA_VERSION: Final = 1

# The vocabularies are Literal types so that pydantic validates them in Rust and
# mypy checks them; CATEGORIES below is derived from them, not written twice.
Gender = Literal["Female", "Male"]
YesNo = Literal["No", "Yes"]
MultipleLines = Literal["No", "Yes", "No phone service"]
InternetService = Literal["DSL", "Fiber optic", "No"]
InternetAddon = Literal["No", "Yes", "No internet service"]
Contract = Literal["Month-to-month", "One year", "Two year"]
PaymentMethod = Literal[
    "Electronic check",
    "Mailed check",
    "Bank transfer (automatic)",
    "Credit card (automatic)",
]

_CATEGORY_TYPES: Final = {
    "gender": Gender,
    "partner": YesNo,
    "dependents": YesNo,
    "phone_service": YesNo,
    "multiple_lines": MultipleLines,
    "internet_service": InternetService,
    "online_security": InternetAddon,
    "online_backup": InternetAddon,
    "device_protection": InternetAddon,
    "tech_support": InternetAddon,
    "streaming_tv": InternetAddon,
    "streaming_movies": InternetAddon,
    "contract": Contract,
    "paperless_billing": YesNo,
    "payment_method": PaymentMethod,
}

#: Categorical features and their allowed values (telco vocabulary, exact spelling).
CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    name: tuple(get_args(kind)) for name, kind in _CATEGORY_TYPES.items()
}

#: Categorical features whose vocabulary is exactly No/Yes (booleans are accepted for them).
YES_NO_FEATURES: Final = tuple(n for n, k in _CATEGORY_TYPES.items() if k is YesNo)

#: Numeric features with inclusive [low, high] bounds. ``total_charges`` may be missing.
NUMERIC_RANGES: Final[dict[str, tuple[float, float]]] = {
    "tenure": (0, 1200),  # months; 100 years is already generous
    "monthly_charges": (0.0, 10_000.0),
    "total_charges": (0.0, 10_000_000.0),
}

#: ``senior_citizen`` is a 0/1 flag.
FLAG_FEATURES: Final = ("senior_citizen",)

#: Every model input, in the order used on the wire and in CSV output.
FEATURES: Final[tuple[str, ...]] = (
    "gender",
    "senior_citizen",
    "partner",
    "dependents",
    "tenure",
    "phone_service",
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "contract",
    "paperless_billing",
    "payment_method",
    "monthly_charges",
    "total_charges",
)

ID_COLUMN: Final = "customer_id"
TARGET: Final = "churn"

#: snake_case name -> column name in the public telco customer-churn CSV.
TELCO_ALIASES: Final[dict[str, str]] = {
    "customer_id": "customerID",
    "gender": "gender",
    "senior_citizen": "SeniorCitizen",
    "partner": "Partner",
    "dependents": "Dependents",
    "tenure": "tenure",
    "phone_service": "PhoneService",
    "multiple_lines": "MultipleLines",
    "internet_service": "InternetService",
    "online_security": "OnlineSecurity",
    "online_backup": "OnlineBackup",
    "device_protection": "DeviceProtection",
    "tech_support": "TechSupport",
    "streaming_tv": "StreamingTV",
    "streaming_movies": "StreamingMovies",
    "contract": "Contract",
    "paperless_billing": "PaperlessBilling",
    "payment_method": "PaymentMethod",
    "monthly_charges": "MonthlyCharges",
    "total_charges": "TotalCharges",
    "churn": "Churn",
}

#: Reverse map, telco column -> snake_case.
FROM_TELCO: Final[dict[str, str]] = {v: k for k, v in TELCO_ALIASES.items()}

#: Every name a field is known by (snake_case, telco column, and the optional event fields), case-folded
#: -> the snake_case name. Exports differ in case (``Tenure`` for ``tenure``): names are matched
#: exactly first, then ignoring case.
FOLDED_NAMES: Final[dict[str, str]] = {
    name.casefold(): snake for snake, telco in TELCO_ALIASES.items() for name in (snake, telco)
} | {name: name for name in ("event_id", "event_time", "schema_version")}
