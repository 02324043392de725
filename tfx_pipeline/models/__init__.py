"""Module files of the pipeline: Transform's preprocessing_fn, Trainer's run_fn, TFMA metrics."""
