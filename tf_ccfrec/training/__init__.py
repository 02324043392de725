"""Training (`train`), its options and presets, the input pipelines and evaluation; the untrained
baselines (`text_knn`, popularity) and the statistics over runs (`significance`, `curves`)."""
