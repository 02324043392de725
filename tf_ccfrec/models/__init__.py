"""TFRS models: CCFRec and the SASRec baseline (`ccfrec`, `sasrec`), the `ModelConfig` they share
(`config`), and the run directory training writes and evaluation and export load
(`run_directory`)."""
