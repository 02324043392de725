"""Leave-one-out splits and next-item examples (ccfrec.md §5, §7)."""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, List, Sequence, Tuple

from tf_ccfrec.data.dataset import SequenceDataset

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class Example:
    """One next-item example.

    Attributes:
      user_id: the user.
      history: up to `max_history` items before the target, oldest first; never empty.
      target: the item to predict.
      position: the target's 0-based position in the user's full sequence; `history` is
        sequence[max(0, position - max_history):position].
    """

    user_id: str
    history: List[str]
    target: str
    position: int


def roles(data: SequenceDataset, user: str) -> List[str]:
    """The split of each position of `user`'s sequence.

    Leave-one-out: the last item is the test target, the one before it the validation target, the
    rest is training. With an official split (`data.splits`), the held-out targets the
    distribution names (they stand at the end of the sequence) take those roles instead.
    """
    if data.splits is None:
        tail = LEAVE_ONE_OUT
    else:
        tail = [s for s in LEAVE_ONE_OUT if user in data.splits.get(s, {})]
    return sequence_roles(len(data.sequences[user]), tail)


LEAVE_ONE_OUT = ("test", "valid")  # the held-out targets, from the end of the sequence


def sequence_roles(n: int, tail: Sequence[str] = LEAVE_ONE_OUT) -> List[str]:
    """The split of each of `n` positions: `tail` from the end (a held-out target needs a
    non-empty history), "train" before."""
    result = ["train"] * n
    for offset, split in enumerate(tail, 1):
        if n - offset >= 1:
            result[n - offset] = split
    return result


def user_examples(user: str, sequence: List[str], user_roles: List[str],
                  max_history: int = 20) -> Iterator[Tuple[str, Example]]:
    """(split, example) for every position of one user's `sequence` with a non-empty history;
    `user_roles` is `roles(data, user)`."""
    for position, split in enumerate(user_roles):
        if position == 0:
            continue
        history = sequence[max(0, position - max_history):position]
        yield split, Example(user, list(history), sequence[position], position)


def cold_items(item_ids: Sequence[str], fraction: float, seed: int) -> List[str]:
    """A seeded `fraction` of the catalog's items (sorted), to be kept out of training.

    Raises:
      ValueError: a fraction outside [0, 1).
    """
    import numpy as np

    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the cold-item fraction must be in [0, 1), got {fraction}")
    ordered = sorted(item_ids)
    count = int(round(fraction * len(ordered)))
    chosen = np.random.default_rng(seed).choice(len(ordered), size=count, replace=False)
    return sorted(ordered[i] for i in chosen)


def without_cold_training(sequence: List[str], user_roles: List[str], cold
                          ) -> Tuple[List[str], List[str]]:
    """(sequence, roles) with the training interactions of `cold` items removed; the held-out
    targets stay, cold or not."""
    kept = [(item, role) for item, role in zip(sequence, user_roles)
            if not (role == "train" and item in cold)]
    return [item for item, _ in kept], [role for _, role in kept]


def make_examples(data: SequenceDataset, max_history: int = 20,
                  cold: Sequence[str] = ()) -> Dict[str, List[Example]]:
    """Examples per split: every position with a non-empty history, in the dataset's user order.

    Training examples are every prefix of the training part of the sequence; validation and test
    examples see everything before their target (the test history includes the validation target).
    With `cold` items, their training interactions are removed first: no training example
    holds them (as target or in its history); they stay valid and test targets (and a cold
    validation target is in its user's test history, as a held-out interaction).
    """
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    cold = frozenset(cold)
    examples: Dict[str, List[Example]] = {s: [] for s in SPLITS}
    for user, sequence in data.sequences.items():
        user_roles = roles(data, user)
        if cold:
            sequence, user_roles = without_cold_training(sequence, user_roles, cold)
        for split, example in user_examples(user, sequence, user_roles, max_history):
            examples[split].append(example)
    return examples
