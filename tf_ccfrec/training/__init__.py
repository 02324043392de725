"""Input pipelines, training and evaluation."""
