"""Optional k-core filtering of raw interaction logs (off by default)."""

from __future__ import annotations

import collections
import dataclasses

from tf_ccfrec.data.dataset import SequenceDataset


def k_core(data: SequenceDataset, k: int) -> SequenceDataset:
    """Repeatedly drops users and items with fewer than `k` interactions until none remain.

    Items that drop out of every sequence leave the catalog too. k <= 1 returns `data` unchanged.
    """
    if k <= 1:
        return data
    sequences = {u: list(s) for u, s in data.sequences.items()}
    while True:
        item_counts = collections.Counter(i for s in sequences.values() for i in s)
        filtered = {}
        for user, seq in sequences.items():
            kept = [i for i in seq if item_counts[i] >= k]
            if len(kept) >= k:
                filtered[user] = kept
        if filtered == sequences:
            break
        sequences = filtered
    used = {i for s in sequences.values() for i in s}
    splits = None
    if data.splits is not None:
        splits = {name: {u: i for u, i in targets.items() if u in sequences and i in used}
                  for name, targets in data.splits.items()}
    return dataclasses.replace(
        data, sequences=sequences, items={i: t for i, t in data.items.items() if i in used},
        numeric={i: v for i, v in data.numeric.items() if i in used}, splits=splits)
