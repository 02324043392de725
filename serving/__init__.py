"""Serving CCFRec SavedModels over TF Serving's REST API."""
