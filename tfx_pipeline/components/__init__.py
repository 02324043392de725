"""The pipeline's custom components and executors."""
