"""Feature names shared by the pipeline's module files."""

HISTORY = "history"
TARGET = "target"
POSITION = "position"
TARGET_POPULARITY = "target_popularity"
HISTORY_LENGTH_BUCKET = "history_length_bucket"
TARGET_CATEGORY = "target_category"

# The TFT vocabulary of item ids; its order (most frequent first) is the model's item order.
ITEM_VOCABULARY = "item_ids"
# Transformed features: item indices (vocabulary position + 1; 0 = padding or unknown).
HISTORY_INDEX = "history"
TARGET_INDEX = "target"
# Transformed: 1 when the target is a head item (ExampleGen's `target_popularity`).
TARGET_IS_HEAD = "target_is_head"
