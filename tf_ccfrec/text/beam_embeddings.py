"""Sentence embeddings through Beam: RunInference with a model handler for the keras-nlp encoder.

Each worker process loads the encoder once (`SentenceEncoderModelHandler.load_model`) and embeds
the batches RunInference hands it; within a batch, texts are sorted by token length and run in
sub-batches padded to their own longest text (`embeddings.TextEncoder.embed`), so a batch costs
what its texts' lengths cost. Workers write what they embed straight into the embedding cache,
as content-keyed shards (`embeddings.write_shard`: the file name is a hash of the texts' keys,
each file written whole), so any number of workers share one cache without a lock and the caller
reads every vector back from it. Locally, DirectRunner's multi-processing mode runs one worker
per core; on Dataflow the pipeline's workers share the work, and the cache must be a location
every worker can write (a `gs://` directory).
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.text import embeddings

SHARD_ITEMS = 4096  # vectors per cache shard a worker writes


def direct_pipeline_args(workers: int) -> List[str]:
    """Beam arguments of a local run on `workers` processes (DirectRunner)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return ["--runner=DirectRunner", f"--direct_num_workers={workers}",
            "--direct_running_mode=multi_processing" if workers > 1
            else "--direct_running_mode=in_memory"]


def worker_threads(options) -> Optional[int]:
    """TensorFlow intra-op threads for each worker of a pipeline with these `PipelineOptions`:
    the cores divided among DirectRunner's worker processes in multi-processing mode; None
    (TensorFlow's default) for one process or another runner."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = options.view_as(StandardOptions).runner
    direct = options.view_as(DirectOptions)
    if runner not in (None, "DirectRunner", "direct") or \
            direct.direct_running_mode != "multi_processing":
        return None
    cores = os.cpu_count() or 1
    return max(1, cores // (direct.direct_num_workers or cores))


def _model_handler_base():
    from apache_beam.ml.inference.base import ModelHandler

    return ModelHandler


class SentenceEncoderModelHandler(_model_handler_base()):
    """RunInference's handler of the sentence encoder: text (str) -> PredictionResult(text,
    float32 [dim] unit vector).

    Args:
      checkpoint_dir: the encoder checkpoint directory (every worker must be able to read it).
      precision: `encoder.load_text_embedder`'s ("float32", "bfloat16", "int8").
      batch_tokens, graph: `TextEncoder`'s.
      min_batch_size, max_batch_size: texts per RunInference batch; a larger batch gives the
        length sort more texts to group.
      threads: TensorFlow's intra-op threads in each worker (None: TensorFlow's default, every
        core; with one worker per core, 1 avoids oversubscribing them).
    """

    def __init__(self, checkpoint_dir: str, precision: str = "float32",
                 batch_tokens: int = 4096, min_batch_size: int = 256,
                 max_batch_size: int = 1024, threads: Optional[int] = None,
                 graph: str = "fused"):
        super().__init__()
        self._checkpoint_dir, self._precision, self._graph = checkpoint_dir, precision, graph
        self._batch_tokens, self._threads = batch_tokens, threads
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self) -> embeddings.TextEncoder:
        if self._threads:
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(self._threads)
                tf.config.threading.set_inter_op_parallelism_threads(self._threads)
            except RuntimeError:  # TensorFlow already initialized in this process
                pass
        return embeddings.TextEncoder(self._checkpoint_dir, self._batch_tokens, self._precision,
                                      self._graph)

    def run_inference(self, batch: Sequence[str], model: embeddings.TextEncoder,
                      inference_args: Optional[dict] = None) -> Iterable:
        from apache_beam.ml.inference.base import PredictionResult

        vectors = model.embed(list(batch))
        return [PredictionResult(text, vector) for text, vector in zip(batch, vectors)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self) -> str:
        return "ccfrec_sentence_encoder"

    def batch_elements_kwargs(self) -> dict:
        return dict(self._batching)


def _write_shards_fn():
    import apache_beam as beam

    class WriteShards(beam.DoFn):
        """(key, PredictionResult) -> cache shards of up to SHARD_ITEMS vectors under
        `directory`, written as they fill and at the end of each bundle."""

        def __init__(self, directory: str):
            self.directory = directory

        def start_bundle(self):
            self.keys, self.vectors = [], []

        def process(self, element):
            key, result = element
            self.keys.append(key)
            self.vectors.append(np.asarray(result.inference, np.float32))
            if len(self.keys) >= SHARD_ITEMS:
                self._flush()
            yield len(self.keys)

        def finish_bundle(self):
            self._flush()

        def _flush(self):
            if self.keys:
                embeddings.write_shard(self.directory, self.keys, np.stack(self.vectors))
                self.keys, self.vectors = [], []

    return WriteShards


def embed_into_cache(texts: Dict[str, str], handler: SentenceEncoderModelHandler,
                     directory: str, pipeline) -> None:
    """Embeds `texts` ({text key: text}) with RunInference on `pipeline` (a `beam.Pipeline`,
    not yet run) and writes the vectors as cache shards under `directory` (the cache root joined
    with the encoder's fingerprint). Returns when the pipeline has finished.

    The texts reach the workers through a file, not the pipeline's graph: a million items'
    texts are about 100 MB, far over what a Dataflow job's graph may hold (`beam.Create`
    would embed them in it). The file, `.pending-<uuid>.jsonl` in `directory` (one JSON
    [key, text] a line; the cache reads only `.npz` shards), is removed afterwards, whether the
    pipeline succeeded or not."""
    import json
    import uuid

    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    pending = storage.join(directory, f".pending-{uuid.uuid4().hex}.jsonl")
    storage.write_text(pending, "".join(json.dumps(item) + "\n"
                                        for item in sorted(texts.items())))
    try:
        with pipeline as p:
            _ = (p
                 | "ReadTexts" >> beam.io.ReadFromText(pending)
                 | "Parse" >> beam.Map(lambda line: tuple(json.loads(line)))
                 | "Embed" >> RunInference(KeyedModelHandler(handler))
                 | "WriteShards" >> beam.ParDo(_write_shards_fn()(directory)))
    finally:
        storage.rmtree(pending)


def make_pipeline(beam_pipeline_args: Sequence[str]):
    """A `beam.Pipeline` of the given arguments (e.g. `direct_pipeline_args(2)`, or Dataflow's)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    return beam.Pipeline(options=PipelineOptions(list(beam_pipeline_args)))


def local_cache_root() -> str:
    """A fresh local directory for a run that has no embedding cache of its own."""
    import tempfile

    return tempfile.mkdtemp(prefix="ccfrec-embeddings-", dir=os.environ.get("TMPDIR"))
