"""Frozen sentence encoders for item text views."""
