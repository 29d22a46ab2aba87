"""churn-stream REST side service: ``api.app.create_app(settings)``; ``churn api`` runs it.

Importing this package does no work: the model is loaded by the app's lifespan.
"""
