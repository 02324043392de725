"""Pipeline configuration: one dataclass, filled by `ccfrec pipeline run|compile` or by code."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

PIPELINE_NAME = "ccfrec"
# The curated schema of the interaction examples, read by the running component from its
# installed package (`components/curated_schema.py`); a path instead names a schema file.
CURATED_SCHEMA = "curated"
RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")
ITEM_FORMATS = ("jsonl", "lcrec", "amazon2023")  # tf_ccfrec.data.item_files.FORMATS


@dataclasses.dataclass
class VertexTraining:
    """The Trainer as a Vertex AI Training CustomJob (TFX's Vertex Trainer extension).

    Attributes:
      project, region: where the job runs.
      workers: replicas in all: one chief and `workers - 1` workers, under
        MultiWorkerMirroredStrategy (Vertex sets TF_CONFIG).
      image: the container every replica runs (default: the pipeline's image).
      machine_type, accelerator_type, accelerator_count: each replica's machine.
    """

    project: str
    region: str
    workers: int = 2
    image: str = ""
    machine_type: str = "n1-standard-8"
    accelerator_type: str = ""
    accelerator_count: int = 0

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError("vertex training needs at least 1 worker")
        if not self.project or not self.region:
            raise ValueError("vertex training needs a project and a region")

    def worker_pool_specs(self) -> List[Dict[str, Any]]:
        machine: Dict[str, Any] = {"machine_type": self.machine_type}
        if self.accelerator_type:
            machine.update(accelerator_type=self.accelerator_type,
                           accelerator_count=self.accelerator_count or 1)
        pool = {"machine_spec": machine, "container_spec": {"image_uri": self.image}}
        pools = [{**pool, "replica_count": 1}]
        if self.workers > 1:
            pools.append({**pool, "replica_count": self.workers - 1})
        return pools

    def custom_config(self) -> Dict[str, Any]:
        """The extension's keys of the Trainer's custom_config."""
        from tfx.extensions.google_cloud_ai_platform import constants
        from tfx.extensions.google_cloud_ai_platform.trainer import executor

        return {constants.ENABLE_VERTEX_KEY: True, constants.VERTEX_REGION_KEY: self.region,
                executor.TRAINING_ARGS_KEY: {
                    "project": self.project,
                    "job_spec": {"worker_pool_specs": self.worker_pool_specs()}}}


@dataclasses.dataclass
class PipelineConfig:
    """Everything that shapes a pipeline run.

    Attributes:
      input_dir: the raw dataset directory, as distributed.
      format: its format (`tf_ccfrec.data.readers.FORMATS`).
      pipeline_root: where TFX writes artifacts.
      serving_model_dir: Pusher's destination; versions land in `<serving_model_dir>/<version>`
        (TF Serving's `<base>/<name>/<version>` with serving_model_dir = `<base>/<name>`).
      metadata_path: the local ML Metadata SQLite file (LocalDagRunner only).
      pipeline_name: the pipeline's name in ML Metadata.
      input_pattern: the interaction files under input_dir (their fingerprint decides
        ExampleGen's caching); with TFX's `{SPAN}` (e.g. "interactions/span-{SPAN}/*") the
        newest span's directory is the dataset.
      catalog_pattern: the catalog's files under input_dir (default: input_pattern, the
        dataset's own catalog); may hold `{SPAN}`.
      item_format: "" (the catalog is the dataset's, read in `format`) or the format of item
        files the catalog pattern matches (jsonl, lcrec, amazon2023).
      window_spans: the Trainer trains on the newest this many interaction spans.
      warm_start: the Trainer starts from the latest blessed model's weights, and the codes
        are those of its codebooks (CCFRec; the first run trains from scratch).
      catalog_only: the catalog-refresh pipeline: the newest catalog span coded with the
        latest blessed model's codebooks and added to it (`CatalogRefresh`), evaluated on the
        latest interaction examples and pushed, without Transform or the Trainer.
      views, max_history, k_core: as `ccfrec data prepare`.
      schema_path: the schema for validation and Transform: CURATED_SCHEMA (the package's
        curated schema, read at run time), a schema file's path or URI (ImportSchemaGen), or
        None (the inferred one).
      codes: SemanticCodesGen parameters (method, pca_dim, codes_per_view, codebook_size,
        seed, views, encoder_precision).
      embedding_cache: SemanticCodesGen's embedding cache directory ("" none).
      model, preset, model_config, train_config, top_k: the Trainer's custom_config
        (`tfx_pipeline.models.model`).
      min_recall_at_10: blessing needs at least this overall Recall@10.
      max_relative_drop: blessing needs Recall@10 and NDCG@10 no more than this fraction
        below the latest blessed model's.
      sampled_negatives: negatives of the sampled protocol.
      beam_args: extra Beam pipeline arguments (e.g. --runner=DataflowRunner ...).
      direct_num_workers, direct_running_mode: the DirectRunner's parallelism.
      enable_cache: reuse the outputs of components whose inputs did not change.
      vertex_training: hand the Trainer to Vertex AI Training (None: train in the Trainer's
        own container).
    """

    input_dir: str
    format: str
    pipeline_root: str
    serving_model_dir: str
    metadata_path: Optional[str] = None
    pipeline_name: str = PIPELINE_NAME
    input_pattern: str = "*"
    catalog_pattern: Optional[str] = None
    item_format: str = ""
    window_spans: int = 1
    warm_start: bool = False
    catalog_only: bool = False
    views: Optional[List[str]] = None
    max_history: int = 20
    k_core: int = 0
    schema_path: Optional[str] = CURATED_SCHEMA
    codes: Dict[str, Any] = dataclasses.field(default_factory=dict)
    embedding_cache: str = ""
    model: str = "ccfrec"
    preset: str = "paper"
    model_config: Dict[str, Any] = dataclasses.field(default_factory=dict)
    train_config: Dict[str, Any] = dataclasses.field(default_factory=dict)
    top_k: int = 100
    min_recall_at_10: float = 0.0
    max_relative_drop: float = 0.05
    sampled_negatives: int = 100
    beam_args: List[str] = dataclasses.field(default_factory=list)
    direct_num_workers: int = 1
    direct_running_mode: str = "in_memory"
    enable_cache: bool = True
    vertex_training: Optional[VertexTraining] = None

    def __post_init__(self):
        from tf_ccfrec.data import readers

        if self.format not in readers.FORMATS:
            raise ValueError(f"unknown format {self.format!r}; known: "
                             f"{', '.join(readers.FORMATS)}")
        if self.direct_running_mode not in RUNNING_MODES:
            raise ValueError(f"direct_running_mode must be one of {RUNNING_MODES}")
        if self.direct_num_workers < 0:
            raise ValueError("direct_num_workers must be >= 0 (0: one per CPU)")
        if self.window_spans < 1:
            raise ValueError("window_spans must be >= 1")
        if self.item_format and self.item_format not in ITEM_FORMATS:
            raise ValueError(f"item_format must be one of {ITEM_FORMATS}")
        if self.item_format and not self.catalog_pattern:
            raise ValueError("item_format needs a catalog_pattern (the item files)")
        if (self.warm_start or self.catalog_only) and self.model != "ccfrec":
            raise ValueError("warm start and catalog refresh need model 'ccfrec' (no item-id "
                             "table)")

    def beam_pipeline_args(self) -> List[str]:
        """DirectRunner settings first; `beam_args` may override them or pick another runner."""
        return [f"--direct_running_mode={self.direct_running_mode}",
                f"--direct_num_workers={self.direct_num_workers}", *self.beam_args]

    def trainer_config(self, code_fingerprint: str = "") -> Dict[str, Any]:
        vertex = self.vertex_training.custom_config() if self.vertex_training else {}
        return {**vertex, "model": self.model, "preset": self.preset,
                "code_fingerprint": code_fingerprint,
                "model_config": {**self.model_config, "max_history": self.max_history},
                "train_config": {"sampled_negatives": self.sampled_negatives,
                                 **self.train_config},
                "top_k": self.top_k}

