"""TFRS models: CCFRec."""
