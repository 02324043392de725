"""The `ccfrec` program: the library's commands (`tf_ccfrec.cli`) and the TFX pipeline's, which
this module registers:

    ccfrec pipeline run --input DIR --format FORMAT [--root DIR] [--serving-model-dir DIR] ...
        runs every component with LocalDagRunner, printing each one's state and wall time as it
        finishes, then the dataset's statistics, the component table, the headline metrics, the
        TFMA slice tables and the pushed model's directory
    ccfrec pipeline compile --output FILE.json --image IMAGE --pipeline-root URI --input URI ...
        [--vertex-training-workers N --vertex-project P --vertex-region R]
        writes the Kubeflow Pipelines v2 / Vertex PipelineSpec (the Trainer on Vertex AI
        Training with N replicas)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tf_ccfrec import cli as library_cli
from tf_ccfrec.training.options import add_training_options, training_overrides
from tfx_pipeline.pipeline.configs import (CURATED_SCHEMA, RUNNING_MODES, PipelineConfig,
                                           VertexTraining)

CODES_FIELDS = ("method", "pca_dim", "codes_per_view", "codebook_size")


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    model_config, train_config = training_overrides(args)
    codes = {f: getattr(args, f"codes_{f}") for f in CODES_FIELDS
             if getattr(args, f"codes_{f}", None) is not None}
    schema = None if args.schema == "infer" else args.schema
    return PipelineConfig(
        input_dir=args.input, format=args.format, pipeline_root=args.pipeline_root,
        serving_model_dir=args.serving_model_dir,
        metadata_path=getattr(args, "metadata", None), pipeline_name=args.pipeline_name,
        views=args.views, max_history=args.max_history, k_core=args.k_core,
        schema_path=schema, codes=codes, embedding_cache=args.embedding_cache,
        model=args.model, preset=args.preset, model_config=model_config,
        train_config=train_config, top_k=args.top_k, min_recall_at_10=args.min_recall_at_10,
        max_relative_drop=args.max_relative_drop, sampled_negatives=args.sampled_negatives,
        beam_args=list(args.beam_arg or []),
        direct_num_workers=args.direct_num_workers,
        direct_running_mode=args.direct_running_mode,
        input_pattern=args.input_pattern, catalog_pattern=args.catalog_pattern,
        item_format=args.item_format, window_spans=args.window_spans,
        warm_start=args.warm_start, catalog_only=args.catalog_only,
        enable_cache=not getattr(args, "no_cache", False))


def _absolute(path: str) -> str:
    """Local paths absolute (TFX records URIs); gs://, s3:// ... as given."""
    return path if "://" in path else os.path.abspath(path)


def print_summary(summary: dict, out=sys.stdout) -> None:
    from tfx_pipeline.components.evaluation_report import markdown

    dataset = summary.get("dataset") or {}
    if dataset:
        splits = ", ".join(f"{k[len('examples_'):]} {v:,}" for k, v in sorted(dataset.items())
                           if k.startswith("examples_"))
        print(f"dataset: {dataset.get('users', 0):,} users, {dataset.get('items', 0):,} items, "
              f"{dataset.get('interactions', 0):,} interactions; examples: {splits}", file=out)
    print("components (state, wall seconds):", file=out)
    for node, info in summary["executions"].items():
        print(f"  {node:32s} {info['state']:9s} {info['seconds']:8.1f}", file=out)
    report = summary.get("report")
    if report:
        print("", file=out)
        print(markdown(report["slices"], report["blessed"], report["evaluation"],
                       report.get("validation"), report.get("test_slices"),
                       report.get("test_evaluation") or "", report.get("sampled") or ""),
              file=out)
        print(f"report: {os.path.join(summary['report_dir'], 'report.md')}", file=out)
    print(f"pushed model: {summary.get('pushed_model') or 'none (not blessed)'}", file=out)


def cmd_run(args: argparse.Namespace) -> int:
    library_cli.prepare_tensorflow()
    from tfx_pipeline import local_runner

    def progress(node: str, state: str, seconds: float) -> None:
        print(f"  {node:32s} {state:9s} {seconds:8.1f}", flush=True)

    print("components as they finish (state, wall seconds):", flush=True)
    try:
        summary = local_runner.run(config_from_args(args), progress=progress)
    except local_runner.PipelineTerminated as stopped:
        print(f"ccfrec: {stopped}", file=sys.stderr)
        return 128 + 15
    print_summary(summary)
    report = summary.get("report") or {}
    print(json.dumps({"pushed_model": summary.get("pushed_model"), "blessing_split": "valid",
                      "overall_valid": (report.get("slices") or [{}])[0],
                      "overall_test": (report.get("test_slices") or [{}])[0]}))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    library_cli.prepare_tensorflow()
    from tfx_pipeline import kubeflow_v2_runner

    image = args.image or kubeflow_v2_runner.DEFAULT_IMAGE
    config = config_from_args(args)
    if args.vertex_training_workers:
        if not (args.vertex_project and args.vertex_region):
            print("ccfrec: --vertex-training-workers needs --vertex-project and --vertex-region",
                  file=sys.stderr)
            return 2
        accelerator, _, count = (args.vertex_accelerator or "").partition(":")
        config.vertex_training = VertexTraining(
            project=args.vertex_project, region=args.vertex_region,
            workers=args.vertex_training_workers, image=image,
            machine_type=args.vertex_machine_type, accelerator_type=accelerator,
            accelerator_count=int(count or (1 if accelerator else 0)))
    path = kubeflow_v2_runner.compile_pipeline(config, args.output, image)
    print(json.dumps({"compiled": path, "image": image}))
    return 0


def _common(p: argparse.ArgumentParser, local: bool) -> None:
    from tf_ccfrec.data import readers

    p.add_argument("--input", required=True, type=_absolute if local else str,
                   help="the raw dataset directory (as distributed)")
    p.add_argument("--format", required=True, choices=readers.FORMATS)
    p.add_argument("--views", type=lambda t: [v for v in t.split(",") if v],
                   help="comma-separated text views (default: every text field)")
    p.add_argument("--input-pattern", default="*",
                   help="the interaction files under --input; TFX's {SPAN} picks the newest "
                        "span, whose directory is the dataset (e.g. "
                        "'interactions/span-{SPAN}/*'; default every file of --input)")
    p.add_argument("--catalog-pattern", default=None,
                   help="the catalog's files under --input, may hold {SPAN} (default: "
                        "--input-pattern, the dataset's own catalog)")
    p.add_argument("--item-format", choices=("jsonl", "lcrec", "amazon2023"), default="",
                   help="the catalog pattern matches item files of this format (as "
                        "`ccfrec catalog add --items` reads)")
    p.add_argument("--window-spans", type=int, default=1, metavar="N",
                   help="train on the newest N interaction spans (default 1)")
    p.add_argument("--warm-start", action="store_true",
                   help="start from the latest blessed model's weights and code the catalog "
                        "with its codebooks (CCFRec)")
    p.add_argument("--catalog-only", action="store_true",
                   help="the catalog-refresh pipeline: the newest catalog span added to the "
                        "latest blessed model without the Trainer, evaluated and pushed")
    p.add_argument("--max-history", type=int, default=20)
    p.add_argument("--k-core", type=int, default=0)
    p.add_argument("--schema", default=CURATED_SCHEMA,
                   help="schema of the interaction examples: 'curated' (default: the installed "
                        "package's tfx_pipeline/schema/interactions.pbtxt, read at run time), "
                        "a schema file's path or URI, or 'infer'")
    p.add_argument("--pipeline-name", default="ccfrec")
    for field in CODES_FIELDS:
        p.add_argument(f"--codes-{field.replace('_', '-')}", dest=f"codes_{field}",
                       type=str if field == "method" else int)
    p.add_argument("--embedding-cache", default="",
                   help="SemanticCodesGen's embedding cache directory (default none)")
    p.add_argument("--model", choices=("ccfrec", "sasrec"), default="ccfrec")
    add_training_options(p, max_history=False)
    p.add_argument("--sampled-negatives", type=int, default=100,
                   help="negatives per example of the sampled protocol")
    p.add_argument("--top-k", type=int, default=100, help="items per serving answer")
    p.add_argument("--min-recall-at-10", type=float, default=0.0,
                   help="blessing needs at least this overall Recall@10")
    p.add_argument("--max-relative-drop", type=float, default=0.05,
                   help="blessing allows Recall@10/NDCG@10 this fraction below the latest "
                        "blessed model")
    p.add_argument("--beam-arg", action="append", metavar="ARG",
                   help="a Beam pipeline argument, e.g. --beam-arg=--runner=DataflowRunner "
                        "(repeatable)")
    p.add_argument("--direct-num-workers", type=int, default=1,
                   help="DirectRunner workers (0: one per CPU)")
    p.add_argument("--direct-running-mode", choices=RUNNING_MODES, default="in_memory")


def add_commands(commands) -> None:
    """Adds `pipeline run` and `pipeline compile` to the `ccfrec` command parser."""
    pipeline = commands.add_parser("pipeline", help="the TFX pipeline: run locally, compile "
                                                    "for Kubeflow")
    sub = pipeline.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser("run", help="run the whole pipeline with LocalDagRunner")
    _common(run, local=True)
    run.add_argument("--root", dest="pipeline_root", type=_absolute, default="out/pipeline",
                     help="pipeline root: artifacts and metadata.sqlite (default out/pipeline)")
    run.add_argument("--serving-model-dir", type=_absolute, default="serving_model/ccfrec",
                     help="Pusher's destination <base>/<name> (default serving_model/ccfrec)")
    run.add_argument("--metadata", type=_absolute,
                     help="ML Metadata SQLite file (default <root>/metadata.sqlite)")
    run.add_argument("--no-cache", action="store_true", help="run every component again")
    run.set_defaults(func=cmd_run)
    compile_ = sub.add_parser("compile", help="write the Kubeflow Pipelines v2 PipelineSpec JSON")
    _common(compile_, local=False)
    compile_.add_argument("--output", required=True, help="the JSON file to write")
    compile_.add_argument("--image", default=None, help="the pipeline container image")
    compile_.add_argument("--pipeline-root", required=True,
                          help="pipeline root on the cluster's storage, e.g. gs://BUCKET/root")
    compile_.add_argument("--serving-model-dir", required=True,
                          help="Pusher's destination, e.g. gs://BUCKET/serving/ccfrec")
    compile_.add_argument("--vertex-training-workers", type=int, default=0, metavar="N",
                          help="train on Vertex AI Training with N replicas (one chief, N-1 "
                               "workers; MultiWorkerMirroredStrategy); default: in the "
                               "Trainer's container")
    compile_.add_argument("--vertex-project", help="the Vertex AI Training job's project")
    compile_.add_argument("--vertex-region", help="the Vertex AI Training job's region")
    compile_.add_argument("--vertex-machine-type", default="n1-standard-8")
    compile_.add_argument("--vertex-accelerator", metavar="TYPE[:COUNT]",
                          help="each replica's accelerator, e.g. NVIDIA_TESLA_T4:1")
    compile_.set_defaults(func=cmd_compile)


def main(argv=None) -> int:
    """`ccfrec`: the library's commands and `pipeline`."""
    return library_cli.main(argv, extensions=(add_commands,))


if __name__ == "__main__":
    sys.exit(main())
