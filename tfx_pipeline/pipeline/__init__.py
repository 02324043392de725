"""The pipeline definition and its configuration."""
