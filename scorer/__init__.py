"""``churn score`` (the batch core, the batch handler, the Faust and native engines and their factory)
and ``churn quality`` (predictions joined with observed outcomes: live model quality per version)."""
