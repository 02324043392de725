"""`ccfrec serve`: TF Serving's REST API over exported CCFRec SavedModels."""
