"""The ``churn`` command: one module per sub-command; nothing imports this package but the entry point."""
