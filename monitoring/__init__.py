"""churn-stream: monitoring."""
