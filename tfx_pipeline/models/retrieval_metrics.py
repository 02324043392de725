"""TFMA metrics of next-item retrieval, from the ranks the exported model's `serve_tf_examples`
signature outputs:

    recall@k, ndcg@k            from `target_rank` (0-based rank among all items)
    sampled_hr@10, sampled_ndcg@10  from `sampled_rank` (rank among the target and 100 negatives)

The definitions are `tf_ccfrec.training.evaluation.metrics_from_ranks`'s; an unknown target
(rank -1) counts as a miss. One TFMA metric per number, so that each takes its own threshold:
`metric_configs()` lists them, e.g. tfma.MetricConfig(class_name="RecallAtK", config='{"k": 10}',
module="tfx_pipeline.models.retrieval_metrics").
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

import apache_beam as beam
import numpy as np
# The evaluated model's transform graph holds a TF Text op; TFMA imports this module (named in
# the EvalConfig) in every process that evaluates, so the op is registered before the model loads.
import tensorflow_text  # noqa: F401
from tensorflow_model_analysis.metrics import metric_types

TARGET_RANK = "target_rank"
SAMPLED_RANK = "sampled_rank"


def metric_names(ks: Sequence[int] = (5, 10), sampled_k: int = 10) -> List[str]:
    return ([f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]
            + [f"sampled_hr@{sampled_k}", f"sampled_ndcg@{sampled_k}"])


class _RankMetric(metric_types.Metric):
    """A metric of one rank output at cut-off k: the hit rate or the NDCG."""

    RANK_KEY = TARGET_RANK
    GAIN = "hit"
    PREFIX = "recall"

    def __init__(self, k: int = 10, name: Optional[str] = None, code_fingerprint: str = ""):
        # code_fingerprint: part of the Evaluator's cache key (`tfx_pipeline.fingerprint`).
        super().__init__(_computations, k=k, name=name or f"{self.PREFIX}@{k}",
                         rank_key=self.RANK_KEY, gain=self.GAIN)


class RecallAtK(_RankMetric):
    """Recall@k of the full ranking (= HR@k with one target)."""


class NDCGAtK(_RankMetric):
    """NDCG@k of the full ranking."""

    GAIN, PREFIX = "ndcg", "ndcg"


class SampledHRAtK(_RankMetric):
    """HR@k of the target among itself and the sampled negatives."""

    RANK_KEY, PREFIX = SAMPLED_RANK, "sampled_hr"


class SampledNDCGAtK(_RankMetric):
    """NDCG@k of the target among itself and the sampled negatives."""

    RANK_KEY, GAIN, PREFIX = SAMPLED_RANK, "ndcg", "sampled_ndcg"


CLASSES = (RecallAtK, NDCGAtK, SampledHRAtK, SampledNDCGAtK)
for _cls in CLASSES:
    metric_types.register_metric(_cls)


def metric_configs(ks: Sequence[int] = (5, 10), sampled_k: int = 10,
                   thresholds: Optional[Dict[str, object]] = None,
                   code_fingerprint: str = "") -> list:
    """tfma.MetricConfigs of every metric of `metric_names`, with `thresholds`
    (tfma.MetricThreshold by metric name) on the overall slice; `code_fingerprint` goes into
    each metric's config, so that the Evaluator's cache key follows this module's code."""
    import json

    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    wanted = [(RecallAtK, k) for k in ks] + [(NDCGAtK, k) for k in ks] + \
        [(SampledHRAtK, sampled_k), (SampledNDCGAtK, sampled_k)]
    configs = []
    for cls, k in wanted:
        name = f"{cls.PREFIX}@{k}"
        threshold = (thresholds or {}).get(name)
        # Thresholds gate the overall slice: small slices (a category with a handful of test
        # users) would make blessing a coin toss.
        per_slice = [config_pb2.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                                  threshold=threshold)] if threshold else []
        configs.append(tfma.MetricConfig(class_name=cls.__name__, module=__name__,
                                         config=json.dumps({"k": k, "code_fingerprint":
                                                            code_fingerprint}),
                                         per_slice_thresholds=per_slice))
    return configs


def _computations(name: str, k: int, rank_key: str, gain: str,
                  model_names: Optional[List[str]] = None,
                  output_names: Optional[List[str]] = None,
                  example_weighted: bool = False) -> metric_types.MetricComputations:
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            key = metric_types.MetricKey(name=name, model_name=model_name,
                                         output_name=output_name,
                                         example_weighted=example_weighted)
            computations.append(metric_types.MetricComputation(
                keys=[key], preprocessors=None,
                combiner=_RankCombiner(key, model_name, rank_key, k, gain)))
    return computations


def _rank(predictions, model_name: str, key: str) -> float:
    if isinstance(predictions, dict) and model_name in predictions and \
            isinstance(predictions[model_name], dict):
        predictions = predictions[model_name]
    if not isinstance(predictions, dict) or key not in predictions:
        raise ValueError(f"retrieval metrics need the model output {key!r} (the "
                         f"serve_tf_examples signature of tf_ccfrec's export); got "
                         f"{sorted(predictions) if isinstance(predictions, dict) else predictions!r}")
    rank = float(np.asarray(predictions[key]).reshape(-1)[0])
    return np.inf if rank < 0 else rank


class _RankCombiner(beam.CombineFn):
    """Accumulates [examples, sum of gains]; gain = 1 (hit) or 1 / log2(rank + 2) (NDCG with
    one relevant item) when rank < k, else 0."""

    def __init__(self, key: metric_types.MetricKey, model_name: str, rank_key: str, k: int,
                 gain: str):
        self._key, self._model_name, self._rank_key, self._k = key, model_name, rank_key, k
        self._ndcg = gain == "ndcg"

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2, np.float64)

    def add_input(self, accumulator: np.ndarray,
                  element: metric_types.StandardMetricInputs) -> np.ndarray:
        rank = _rank(element.prediction, self._model_name, self._rank_key)
        accumulator[0] += 1
        if rank < self._k:
            accumulator[1] += 1 / np.log2(rank + 2) if self._ndcg else 1.0
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        result = self.create_accumulator()
        for accumulator in accumulators:
            result += accumulator
        return result

    def extract_output(self, accumulator: np.ndarray) -> Dict[metric_types.MetricKey, float]:
        return {self._key: float(accumulator[1] / max(accumulator[0], 1.0))}
