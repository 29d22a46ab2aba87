"""churn-stream: api."""
