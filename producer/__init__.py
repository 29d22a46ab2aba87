"""churn-stream: producer."""
