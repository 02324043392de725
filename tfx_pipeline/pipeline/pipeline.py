"""The CCFRec TFX pipeline:

    ExampleGen (interactions) -> StatisticsGen -> SchemaGen, [CuratedSchemaGen] ->
        ExampleValidator -> AnomaliesGate
    CatalogExampleGen -> SemanticCodesGen
    Transform (item vocabulary, ids -> indices; after AnomaliesGate)
    CCFRecTrainer (transformed examples, transform graph, codes)
    latest blessed model resolver -> Evaluator (TFMA on the valid split, slices, thresholds:
        the blessing) ; TestEvaluator (TFMA on the test split, reported, never gated on)
        -> EvaluationReportGen
    Pusher (when blessed)

Day two (`PipelineConfig`): interaction and catalog patterns with `{SPAN}`; the Trainer on a
rolling window of spans (`window_spans`: ExampleGen reads the newest N), warm-started from the
latest blessed model (`warm_start`, the codes then under its codebooks); the catalog-refresh
pipeline
(`catalog_only`, `create_catalog_pipeline`): the newest catalog span through SemanticCodesGen
with the blessed model's codebooks and CatalogRefresh, then the Evaluators and the Pusher, no
Transform and no Trainer. The two share the pipeline name, so one's blessed models and
examples are the other's inputs.

Every component that runs tf-ccfrec code carries its `fingerprint.code_fingerprint` in its exec
properties, so TFX's cache follows the code as well as the data.
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from tfx_pipeline.components import example_gen
from tfx_pipeline.components.anomalies_gate import AnomaliesGate
from tfx_pipeline.components.catalog_refresh import CatalogRefresh
from tfx_pipeline.components.curated_schema import CuratedSchemaGen
from tfx_pipeline.components.evaluation_report import EvaluationReportGen
from tfx_pipeline.components.semantic_codes import SemanticCodesGen
from tfx_pipeline.components.trainer import CCFRecTrainer
from tfx_pipeline.models import features, retrieval_metrics
from tfx_pipeline.fingerprint import code_fingerprint
from tfx_pipeline.pipeline.configs import CURATED_SCHEMA, PipelineConfig

PREPROCESSING_FN = "tfx_pipeline.models.preprocessing.preprocessing_fn"
RUN_FN = "tfx_pipeline.models.model.run_fn"
EVAL_SIGNATURE = "serve_tf_examples"
SLICES = (features.TARGET_POPULARITY, features.HISTORY_LENGTH_BUCKET, features.TARGET_CATEGORY)


def eval_config(config: PipelineConfig, gate: bool = True) -> tfma.EvalConfig:
    """TFMA over the exported model's `serve_tf_examples` signature: the retrieval metrics
    overall and per slice; with `gate`, a value threshold and a change threshold against the
    latest blessed model on Recall@10 and NDCG@10 (the blessing)."""
    change = tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                         relative={"value": -config.max_relative_drop})
    thresholds = {
        "recall@10": tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(
                lower_bound={"value": config.min_recall_at_10}),
            change_threshold=change),
        "ndcg@10": tfma.MetricThreshold(change_threshold=change),
    }
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=EVAL_SIGNATURE)],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f])
                                              for f in SLICES],
        metrics_specs=[tfma.MetricsSpec(
            metrics=[tfma.MetricConfig(class_name="ExampleCount")]
            + retrieval_metrics.metric_configs(
                thresholds=thresholds if gate else None,
                code_fingerprint=code_fingerprint("Evaluator")))])


def example_gen_for(config: PipelineConfig, output: str):
    settings: Dict[str, object] = {"format": config.format, "output": output,
                                   "max_history": config.max_history, "k_core": config.k_core,
                                   "views": config.views,
                                   "code_fingerprint": code_fingerprint("ExampleGen")}
    pattern = config.input_pattern
    if output == "interactions" and config.window_spans > 1:
        settings.update(window_spans=config.window_spans, pattern=pattern)
    if output == "catalog":
        pattern = config.catalog_pattern or pattern
        if config.item_format:
            settings["item_format"] = config.item_format
    return FileBasedExampleGen(
        input_base=config.input_dir,
        input_config=example_gen.input_config(output, pattern),
        # Output splits = input splits (without it one input split is hashed into train/eval).
        output_config=tfx.proto.Output(),
        custom_config=example_gen.custom_config(settings),
        custom_executor_spec=executor_spec.BeamExecutorSpec(example_gen.Executor))


def _vertex_executor():
    from tfx_pipeline.components.vertex_trainer import VertexExecutor

    return executor_spec.ExecutorClassSpec(VertexExecutor)


def latest_blessed_model():
    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")


def interaction_examples():
    """ExampleGen's interaction examples of every run of the pipeline (for resolvers)."""
    return tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                           producer_component_id="ExampleGen", output_key="examples")


def codes_gen(config: PipelineConfig, catalog, base_model=None):
    return SemanticCodesGen(catalog=catalog.outputs["examples"], base_model=base_model,
                            embedding_cache=config.embedding_cache,
                            code_fingerprint=code_fingerprint("SemanticCodesGen"),
                            **{k: (",".join(v) if k == "views" else v)
                               for k, v in config.codes.items()})


def evaluation_and_push(config: PipelineConfig, examples, model, baseline):
    """Evaluator (the blessing, on valid), TestEvaluator (test), EvaluationReportGen, Pusher."""
    # The blessing is decided on the validation split; the test split is reported beside it.
    evaluator = tfx.components.Evaluator(
        examples=examples, model=model, baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config), example_splits=["valid"])
    test_evaluator = tfx.components.Evaluator(
        examples=examples, model=model, eval_config=eval_config(config, gate=False),
        example_splits=["test"]).with_id("TestEvaluator")
    report = EvaluationReportGen(evaluation=evaluator.outputs["evaluation"],
                                 blessing=evaluator.outputs["blessing"],
                                 test_evaluation=test_evaluator.outputs["evaluation"],
                                 code_fingerprint=code_fingerprint("EvaluationReportGen"),
                                 sampled_negatives=config.sampled_negatives,
                                 sampled_protocol=config.train_config.get("sampled_protocol",
                                                                          "unseen"))
    pusher = tfx.components.Pusher(
        model=model, model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=config.serving_model_dir)))
    return [evaluator, test_evaluator, report, pusher]


def _pipeline(config: PipelineConfig, components, metadata_connection_config):
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
        components=components, enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=config.beam_pipeline_args())


def create_catalog_pipeline(config: PipelineConfig,
                            metadata_connection_config: Optional[object] = None
                            ) -> tfx.dsl.Pipeline:
    """The catalog-refresh pipeline: CatalogExampleGen (newest catalog span) ->
    SemanticCodesGen (the latest blessed model's codebooks) -> CatalogRefresh (that model plus
    the new and changed items) -> Evaluator / TestEvaluator on the latest interaction
    examples -> EvaluationReportGen, Pusher."""
    catalog = example_gen_for(config, "catalog").with_id("CatalogExampleGen")
    baseline = latest_blessed_model()
    codes = codes_gen(config, catalog, baseline.outputs["model"])
    refresh = CatalogRefresh(base_model=baseline.outputs["model"], codes=codes.outputs["codes"],
                             catalog=catalog.outputs["examples"],
                             code_fingerprint=code_fingerprint("CatalogRefresh"))
    interactions = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        examples=interaction_examples()).with_id("latest_interactions_resolver")
    components = [catalog, baseline, codes, refresh, interactions]
    components += evaluation_and_push(config, interactions.outputs["examples"],
                                      refresh.outputs["model"], baseline)
    return _pipeline(config, components, metadata_connection_config)


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config: Optional[object] = None) -> tfx.dsl.Pipeline:
    if config.catalog_only:
        return create_catalog_pipeline(config, metadata_connection_config)
    interactions = example_gen_for(config, "interactions").with_id("ExampleGen")
    catalog = example_gen_for(config, "catalog").with_id("CatalogExampleGen")
    statistics = tfx.components.StatisticsGen(examples=interactions.outputs["examples"])
    inferred = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"],
                                        infer_feature_shape=True)
    components = [interactions, catalog, statistics, inferred]
    if config.schema_path == CURATED_SCHEMA:
        curated = CuratedSchemaGen(code_fingerprint=code_fingerprint("CuratedSchemaGen"))
        components.append(curated)
        schema = curated.outputs["schema"]
    elif config.schema_path:
        curated = tfx.components.ImportSchemaGen(schema_file=config.schema_path)
        components.append(curated)
        schema = curated.outputs["schema"]
    else:
        schema = inferred.outputs["schema"]
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema)
    gate = AnomaliesGate(anomalies=validator.outputs["anomalies"],
                         code_fingerprint=code_fingerprint("AnomaliesGate"))
    baseline = latest_blessed_model()
    codes = codes_gen(config, catalog, baseline.outputs["model"] if config.warm_start else None)
    transform = tfx.components.Transform(
        examples=interactions.outputs["examples"], schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={"code_fingerprint": code_fingerprint("Transform")},
        # The vocabulary is the set of items the data knows: every split is analyzed (ids only;
        # no statistic of the held-out targets reaches the model).
        splits_config=tfx.proto.SplitsConfig(analyze=["train", "valid", "test"],
                                             transform=["train", "valid", "test"]))
    transform.add_upstream_node(gate)
    trainer = CCFRecTrainer(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        codes=codes.outputs["codes"], schema=schema, run_fn=RUN_FN,
        base_model=baseline.outputs["model"] if config.warm_start else None,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["valid"]),
        custom_config=config.trainer_config(code_fingerprint("CCFRecTrainer")),
        custom_executor_spec=_vertex_executor() if config.vertex_training else None)
    components += [validator, gate, baseline, codes, transform, trainer]
    components += evaluation_and_push(config, interactions.outputs["examples"],
                                      trainer.outputs["model"], baseline)
    return _pipeline(config, components, metadata_connection_config)
