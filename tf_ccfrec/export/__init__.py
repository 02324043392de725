"""SavedModel export of a trained model for TF Serving, TFMA and the `ccfrec serve` server."""
