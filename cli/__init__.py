"""churn-stream: cli."""
