"""churn-stream: scorer."""
