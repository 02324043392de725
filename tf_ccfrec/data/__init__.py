"""Dataset readers into one normalized form, and statistics over it."""
