"""``churn score``: the batch core, the batch handler, the Faust and native engines and their factory."""
