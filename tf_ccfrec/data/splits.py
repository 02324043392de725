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


def make_examples(data: SequenceDataset, max_history: int = 20) -> Dict[str, List[Example]]:
    """Examples per split: every position with a non-empty history, in the dataset's user order.

    Training examples are every prefix of the training part of the sequence; validation and test
    examples see everything before their target (the test history includes the validation target).
    """
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    examples: Dict[str, List[Example]] = {s: [] for s in SPLITS}
    for user, sequence in data.sequences.items():
        for split, example in user_examples(user, sequence, roles(data, user), max_history):
            examples[split].append(example)
    return examples


def training_sequences(data: SequenceDataset) -> Dict[str, List[str]]:
    """Each user's training part: the sequence without its held-out targets."""
    return {user: [item for item, role in zip(seq, roles(data, user)) if role == "train"]
            for user, seq in data.sequences.items()}
