"""Every stage of tf-ccfrec on a synthetic catalog of a chosen size, timed, one JSON line a stage.

Usage (inside the environment):
    bin/env-run python bench/scale.py --items N --users M [--work DIR] [--embeddings-sample K]
        [--train-steps 20] [--eval-users 10000] [--requests 300] [--stages ...] [--keep]

The dataset (stage "generate", written to DIR/raw in the LC-Rec format, then read by the real
reader):
- Item text is recombined from the real catalogs at hand: the bundled Office catalog and, when
  ../shared/data holds them, Beauty's and Office's. Each synthetic item's title joins the first
  words of one real title to the last words of another (cut at random word boundaries), its brand
  and its categories are those of a real item drawn uniformly (so they repeat with the real
  frequencies), and its description is empty as often as the real ones are, else the first half
  of one real description's sentences followed by the second half of another's. Texts therefore
  differ the way real titles and descriptions do, and collide the way real brands and category
  paths do.
- Interactions follow Beauty's (the bundled Office's when Beauty is not at hand): each user's
  sequence length is drawn from Beauty's user sequence lengths, each item's popularity weight
  from Beauty's per-item interaction counts (both resampled from the empirical distributions), and
  each interaction is an item drawn by those weights. Items no draw picks are in the catalog with
  no interaction, as in any large catalog.

The stages, each run in a process of its own (its peak RSS is that process's):
  generate  the synthetic dataset (not a tf-ccfrec stage; timed for completeness)
  prepare   `ccfrec data prepare` (tf_ccfrec.data.prepare.prepare), history 20
  codes     `ccfrec codes build` (tf_ccfrec.codes.build.build_codes; --encode-workers and
            --encoder-precision are its --workers and --encoder-precision). With --embeddings-sample K
            only K distinct texts go through the real encoder (timed: texts/s); every other text
            gets a seeded projection of those K (two of them mixed by a hash of the text, plus
            hashed noise: equal texts, equal vectors), placed in the embedding cache that
            build_codes reads, so PCA, PQ and the artifact run on every item as in production.
  train     a fixed number of steps (--train-steps, after --warmup-steps untimed) of CCFRec with
            the sampled softmax (`--preset beauty`: in-batch targets + 1,024 shared uniform
            negatives), through the real input pipeline, model and optimizer
  evaluate  full-ranking evaluation (tf_ccfrec.training.evaluation) of --eval-users test users:
            the catalog fused once ("fuse_seconds"), then every user scored against every item
            ("ms_per_user": all of it; "steady_ms_per_user": the median batch of full size after
            the first, whose tracing and XLA compiling "first_batch_seconds" includes)
  export    `ccfrec export` of the trained run (every item vector, the SavedModel, warm-up
            records and the ScaNN index)
  scann     the ScaNN index alone (tf_ccfrec.export.scann_index.build_searcher) over the exported
            item vectors; recall@10 against exact search for the test users' own query vectors
  serve     `ccfrec serve` on loopback; --requests sequential REST predictions (c = 1, one
            history each, keep-alive) with exact search and with ScaNN; p50 and p99 as the client
            sees them, and the server's peak RSS

Each line: {"stage", "items", "users", "interactions", "seconds", "peak_rss_gib",
"minor_page_faults", ...}; the
training line adds "examples_per_second", the serving line "p50_ms" and "p99_ms" per search.
Results and curves: docs/scale.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

STAGES = ("generate", "prepare", "codes", "train", "evaluate", "export", "scann", "serve")
VIEWS = ("title", "brand", "categories", "description")
MODEL_NAME = "scale"


# -- the synthetic dataset --------------------------------------------------------------------

def source_catalogs():
    """(item texts [{view: text}], per-user sequence lengths, per-item interaction counts, name of
    the dataset the distributions come from) of the real datasets at hand."""
    import tf_ccfrec.compat  # noqa: F401

    from tf_ccfrec.data import readers

    found = [("lcrec", os.path.join(REPO, "data", "office"))]
    shared = os.path.join(os.path.dirname(REPO), "shared", "data")
    if os.path.isdir(os.path.join(shared, "beauty")):
        found.insert(0, ("p5", os.path.join(shared, "beauty")))
    texts, fitted = [], None
    for format_name, directory in found:
        data = readers.read(format_name, directory)
        texts += [{view: item.get(view, "") for view in VIEWS} for item in data.items.values()]
        if fitted is None:
            counts = {}
            for sequence in data.sequences.values():
                for item in sequence:
                    counts[item] = counts.get(item, 0) + 1
            fitted = (np.array([len(s) for s in data.sequences.values()]),
                      np.array(list(counts.values())), data.name)
    return texts, *fitted


def _splice(a: str, b: str, rng) -> str:
    """The first words of `a` (at least one) followed by the last words of `b`."""
    left, right = a.split(), b.split()
    if not left or not right:
        return a or b
    return " ".join(left[:rng.integers(1, len(left) + 1)] + right[rng.integers(0, len(right)):])


def _sentences(text: str):
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def synthetic_items(texts, n: int, seed: int):
    """{item index as str: {view: text}} of `n` items recombined from `texts` (module doc)."""
    rng = np.random.default_rng(seed)
    described = [t["description"] for t in texts if t["description"]]
    empty_rate = 1 - len(described) / len(texts)
    picks = rng.integers(0, len(texts), (n, 4))
    items = {}
    for i in range(n):
        a, b, c, d = (texts[j] for j in picks[i])
        description = ""
        if described and rng.random() >= empty_rate:
            first = _sentences(described[rng.integers(len(described))])
            second = _sentences(described[rng.integers(len(described))])
            description = " ".join(first[: (len(first) + 1) // 2] + second[len(second) // 2:])
        items[str(i)] = {"title": _splice(a["title"], b["title"], rng), "brand": c["brand"],
                         "categories": d["categories"], "description": description}
    return items


def synthetic_sequences(lengths, counts, n_items: int, n_users: int, seed: int):
    """{user index as str: [item index, ...]}: lengths resampled from `lengths`, items drawn by
    weights resampled from `counts`."""
    rng = np.random.default_rng(seed + 1)
    weights = rng.choice(counts, n_items).astype(np.float64)
    user_lengths = rng.choice(lengths, n_users)
    drawn = rng.choice(n_items, int(user_lengths.sum()), p=weights / weights.sum())
    ends = np.cumsum(user_lengths)
    return {str(u): drawn[end - length:end].tolist()
            for u, (end, length) in enumerate(zip(ends, user_lengths))}


def generate(args) -> dict:
    from tf_ccfrec import storage

    texts, lengths, counts, fitted_to = source_catalogs()
    items = synthetic_items(texts, args.items, args.seed)
    sequences = synthetic_sequences(lengths, counts, args.items, args.users, args.seed)
    raw = os.path.join(args.work, "raw")
    with storage.atomic_directory(raw, overwrite=True) as staging:
        with open(os.path.join(staging, "Scale.item.json"), "w") as f:
            json.dump(items, f)
        with open(os.path.join(staging, "Scale.inter.json"), "w") as f:
            json.dump(sequences, f)
        # Serving requests: users' histories without their last item, as raw ids.
        requests = [[str(i) for i in s[:-1][-20:]] for s in list(sequences.values())[:2000]]
        with open(os.path.join(staging, "requests.json"), "w") as f:
            json.dump(requests, f)
    distinct = {v: len({item[v] for item in items.values()}) for v in VIEWS}
    return {"source_items": len(texts), "distributions_of": fitted_to,
            "distinct_texts": distinct,
            "interacted_items": int(len({i for s in sequences.values() for i in s}))}


# -- stages through the library ---------------------------------------------------------------

def prepare(args) -> dict:
    from tf_ccfrec.data import prepare as prepare_lib

    statistics = prepare_lib.prepare("lcrec", os.path.join(args.work, "raw"),
                                     os.path.join(args.work, "prepared"), max_history=20,
                                     overwrite=True)
    return {"examples": statistics["examples"]}


def projected_embeddings(sample: np.ndarray, keys, dim: int) -> np.ndarray:
    """float32 [len(keys), dim] unit vectors, each a mix of two rows of `sample` [K, dim] and
    noise, all chosen by the key (a hex text hash): the same text, the same vector."""
    noise = np.random.default_rng(0).standard_normal((4096, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    h = np.array([int(k, 16) & (2**60 - 1) for k in keys], dtype=np.int64)
    first, second = h % len(sample), (h // len(sample)) % len(sample)
    share = 0.3 + 0.4 * ((h >> 30) & 0xFFFF) / 0xFFFF
    vectors = (share[:, None] * sample[first] + (1 - share[:, None]) * sample[second]
               + 0.2 * noise[(h >> 46) % 4096])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def codes(args) -> dict:
    from tf_ccfrec.codes.build import build_codes
    from tf_ccfrec.codes.config import CodesConfig

    prepared, output = os.path.join(args.work, "prepared"), os.path.join(args.work, "codes")
    cache = os.path.join(args.work, "embedding-cache")
    shutil.rmtree(cache, ignore_errors=True)
    result = {}
    if args.embeddings_sample:
        from tf_ccfrec.data import prepare as prepare_lib, tfrecords
        from tf_ccfrec.text import embeddings, encoder as encoder_lib

        views = prepare_lib.load_statistics(prepared)["views"]
        _, items = tfrecords.read_catalog(prepared, views)
        texts = {embeddings.text_key(t[v]): t[v] for t in items.values() for v in views}
        keys = sorted(texts)
        rng = np.random.default_rng(args.seed)
        chosen = rng.choice(len(keys), min(args.embeddings_sample, len(keys)), replace=False)
        encoder = embeddings.TextEncoder(encoder_lib.minilm_checkpoint_dir(),
                                         precision=args.encoder_precision)
        encoder.embed([texts[keys[i]] for i in chosen[:64]])   # tracing, untimed
        started = time.perf_counter()
        sample = encoder.embed([texts[keys[i]] for i in chosen])
        encode_seconds = time.perf_counter() - started
        rest = sorted(set(keys) - {keys[i] for i in chosen})
        directory = os.path.join(cache, encoder.fingerprint)
        embeddings.write_shard(directory, [keys[i] for i in chosen], sample)
        for start in range(0, len(rest), 100_000):
            part = rest[start:start + 100_000]
            embeddings.write_shard(directory, part, projected_embeddings(sample, part,
                                                                         encoder.dim))
        del items, texts
        result.update({"distinct_texts": len(keys), "encoded_texts": len(chosen),
                       "projected_texts": len(rest), "encode_seconds": round(encode_seconds, 2),
                       "texts_per_second": round(len(chosen) / encode_seconds, 1),
                       "embeddings": f"{len(chosen)} texts through the encoder, "
                                     f"{len(rest)} projected from them"})
    started = time.perf_counter()
    manifest = build_codes(prepared, output, CodesConfig(), cache_dir=cache, overwrite=True,
                           precision=args.encoder_precision, workers=args.encode_workers)
    result.update({"build_codes_seconds": round(time.perf_counter() - started, 1),
                   "usage": manifest.get("usage"), "build_seconds": manifest.get("seconds")})
    return result


def _run_dir(args) -> str:
    return os.path.join(args.work, "run")


def train(args) -> dict:
    import tensorflow as tf

    from tf_ccfrec import storage
    from tf_ccfrec.codes import artifact as artifact_lib
    from tf_ccfrec.models.run_directory import ITEM_ORDER, build_model, save_best_weights
    from tf_ccfrec.training import inputs, presets
    from tf_ccfrec.training.train import WarmupConstant

    model_config, train_config = presets.configs("beauty", model_name="ccfrec")
    tf.keras.utils.set_random_seed(args.seed)
    codes_dir = os.path.join(args.work, "codes")
    artifact = artifact_lib.load(codes_dir)
    data = inputs.PreparedData(os.path.join(args.work, "prepared"), artifact.item_ids,
                               model_config.max_history)
    batches = data.dataset("train", train_config.batch_size, shuffle=True, seed=args.seed,
                           repeat=True, drop_remainder=True)
    model = build_model("ccfrec", model_config, artifact, seed=args.seed)
    model.compile(optimizer=tf.keras.optimizers.AdamW(
        learning_rate=WarmupConstant(train_config.learning_rate, train_config.warmup_steps),
        weight_decay=train_config.weight_decay))

    class Clock(tf.keras.callbacks.Callback):
        """The time at which each batch ends."""

        def __init__(self):
            super().__init__()
            self.ends = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    clock = Clock()
    history = model.fit(batches, epochs=1, steps_per_epoch=args.warmup_steps + args.train_steps,
                        callbacks=[clock], verbose=0)
    # The timed steps, batch end to batch end, after the warm-up steps.
    steps = np.diff(clock.ends)[args.warmup_steps:]
    seconds = float(steps.sum())
    run = _run_dir(args)
    shutil.rmtree(run, ignore_errors=True)
    save_best_weights(model, os.path.join(run, "checkpoints"))
    storage.write_text(os.path.join(run, ITEM_ORDER), "\n".join(artifact.item_ids) + "\n")
    storage.write_json(os.path.join(run, "config.json"), {
        "model": "ccfrec", "model_config": dataclasses.asdict(model_config),
        "train_config": {"sampled_negatives": 100, "seed": args.seed,
                         "sampled_protocol": "unseen"},
        "codes": storage.absolute(codes_dir),
        "prepared": storage.absolute(os.path.join(args.work, "prepared"))})
    examples = args.train_steps * train_config.batch_size
    return {"preset": "beauty", "loss": model_config.loss,
            "num_negatives": model_config.num_negatives, "batch_size": train_config.batch_size,
            "timed_steps": args.train_steps, "train_seconds": round(seconds, 2),
            "step_seconds": [round(float(step), 3) for step in steps],
            "examples_per_second": round(examples / seconds, 1),
            "final_loss": round(float(history.history["loss"][-1]), 4)}


def _test_batches(args, item_ids, max_history: int, users: int, batch_size: int = 1024):
    from tf_ccfrec.training import inputs

    data = inputs.PreparedData(os.path.join(args.work, "prepared"), item_ids, max_history)
    return data.dataset("test", batch_size).unbatch().take(users).batch(batch_size)


def evaluate(args) -> dict:
    from tf_ccfrec.models.run_directory import load_run
    from tf_ccfrec.training import evaluation

    model, run = load_run(_run_dir(args))
    dataset = _test_batches(args, run["item_ids"], model.config.max_history, args.eval_users)
    started = time.perf_counter()
    scores_of = evaluation.ranking_function(model)
    fuse_seconds = time.perf_counter() - started
    next(iter(dataset))
    calls = []   # (users, called, returned) of each call; the first traces and compiles

    def timed(history, targets):
        called = time.perf_counter()
        scores, ranks = scores_of(history, targets)
        ranks.numpy()
        calls.append((int(history.shape[0]), called, time.perf_counter()))
        return scores, ranks

    started = time.perf_counter()
    metrics = evaluation.evaluate_ranking(timed, model.num_items, dataset)
    ended = time.perf_counter()
    rank_seconds = ended - started
    users = metrics["examples"]
    size = calls[0][0]
    steady = [end - call for rows, call, end in calls[1:] if rows == size]
    gaps = [call - previous[2] for previous, (_, call, _) in zip(calls, calls[1:])]
    return {"users_evaluated": users, "fuse_seconds": round(fuse_seconds, 1),
            "ranking_seconds": round(rank_seconds, 1),
            "ms_per_user": round(rank_seconds / max(users, 1) * 1000, 3),
            "batch_users": size, "first_batch_seconds": round(calls[0][2] - calls[0][1], 2),
            "calls_seconds": round(sum(end - call for _, call, end in calls), 1),
            "before_first_call_seconds": round(calls[0][1] - started, 2),
            "largest_gaps_between_calls_seconds": sorted(round(g, 2) for g in gaps)[-3:],
            "after_last_call_seconds": round(ended - calls[-1][2], 2),
            "batch_seconds_quartiles": [round(float(q), 3) for q in
                                        np.percentile(steady or [0.0], [25, 50, 75])],
            "steady_ms_per_user": (round(float(np.median(steady)) / size * 1000, 3)
                                   if steady else None),
            "recall@10": round(metrics["recall@10"], 4)}


def _export_dir(args) -> str:
    return os.path.join(args.work, "export", MODEL_NAME, "1")


def export(args) -> dict:
    from tf_ccfrec.export import saved_model

    path = _export_dir(args)
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    saved_model.export_run(_run_dir(args), path, top_k=10, with_scann=True)
    size = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)
    return {"export_gib": round(size / 2**30, 3), "with_scann": True}


def scann(args) -> dict:
    import tensorflow as tf

    from tf_ccfrec.export import saved_model
    from tf_ccfrec.export.scann_index import build_searcher

    module = saved_model.load(_export_dir(args))
    # The vectors as scored (unit rows under cosine), as `ccfrec export` indexes them.
    table = module.item_table.numpy()[1:]
    vectors = table / np.linalg.norm(table, axis=1, keepdims=True)
    del table
    with open(os.path.join(args.work, "raw", "requests.json")) as f:
        histories = json.load(f)[:args.scann_queries]
    width = max(len(h) for h in histories)
    queries = module.signatures["embed_query"](history=tf.constant(
        [h + [""] * (width - len(h)) for h in histories]))["query"].numpy().astype(np.float32)
    started = time.perf_counter()
    searcher = build_searcher(vectors)
    build_seconds = time.perf_counter() - started
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] if len(vectors) < 200_000 else \
        np.stack([np.argpartition(-(vectors @ q), 10)[:10] for q in queries])
    found, _ = searcher.search_batched(queries, final_num_neighbors=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(),
                                                               found.tolist())])
    return {"build_seconds": round(build_seconds, 1), "queries": len(queries),
            "recall@10": round(float(recall), 4)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _latencies(port: int, bodies) -> dict:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times = []
    for i, body in enumerate(bodies):
        started = time.perf_counter()
        connection.request("POST", f"/v1/models/{MODEL_NAME}:predict", body,
                           {"Content-Type": "application/json"})
        answer = connection.getresponse()
        payload = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"request {i}: HTTP {answer.status}: {payload[:300]!r}")
        times.append(time.perf_counter() - started)
    ms = np.asarray(times[len(times) // 10:]) * 1000     # the first tenth warms up
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "requests": len(ms)}


def serve(args) -> dict:
    import http.client

    with open(os.path.join(args.work, "raw", "requests.json")) as f:
        histories = json.load(f)
    port = _free_port()
    log_path = os.path.join(args.work, "serve.log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tfx_pipeline.cli", "serve", "--model-base",
             os.path.join(args.work, "export"), "--model-name", MODEL_NAME, "--port", str(port),
             "--grpc-port", "0"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if server.poll() is not None or time.perf_counter() - started > 1800:
                with open(log_path) as f:
                    raise RuntimeError(f"the server did not come up:\n{f.read()[-2000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", f"/v1/models/{MODEL_NAME}")
                answer = json.loads(connection.getresponse().read())
                if any(v.get("state") == "AVAILABLE"
                       for v in answer.get("model_version_status", [])):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        load_seconds = time.perf_counter() - started
        result = {"load_seconds": round(load_seconds, 1)}
        for search in ("exact", "scann"):
            bodies = [json.dumps({"instances": [histories[i % len(histories)]],
                                  "search": search}).encode() for i in range(args.requests)]
            result[search] = _latencies(port, bodies)
        with open(f"/proc/{server.pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        result["server_peak_rss_gib"] = round(peak / 2**20, 3)
    finally:
        server.terminate()
        server.wait(timeout=60)
    result["p50_ms"], result["p99_ms"] = result["scann"]["p50_ms"], result["scann"]["p99_ms"]
    return result


FUNCTIONS = {"generate": generate, "prepare": prepare, "codes": codes, "train": train,
             "evaluate": evaluate, "export": export, "scann": scann, "serve": serve}


# -- driver -----------------------------------------------------------------------------------

def run_stage(args) -> dict:
    """Runs one stage in this process; its line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

    started = time.perf_counter()
    result = FUNCTIONS[args.stage](args)
    line = {"stage": args.stage, "items": args.items, "users": args.users}
    statistics = os.path.join(args.work, "prepared", "statistics.json")
    if os.path.exists(statistics):
        with open(statistics) as f:
            line["interactions"] = json.load(f).get("interactions")
    line["seconds"] = round(time.perf_counter() - started, 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    line["peak_rss_gib"] = round(usage.ru_maxrss / 2**20, 3)
    line["minor_page_faults"] = usage.ru_minflt
    line.update(result)
    # The serving stage's memory is the server's.
    line["peak_rss_gib"] = max(line["peak_rss_gib"], result.get("server_peak_rss_gib", 0))
    return line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--work", help="working directory (default /tmp/ccfrec-scale/<items>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embeddings-sample", type=int, default=0, metavar="K",
                        help="encode K distinct texts, project the rest from them (0: encode all)")
    parser.add_argument("--encoder-precision", choices=("float32", "bfloat16", "int8"),
                        default="float32")
    parser.add_argument("--encode-workers", type=int, default=0,
                        help="`codes build --workers`: Beam worker processes (0: in-process)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed training steps")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--scann-queries", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300, help="REST requests per search")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--output", help="also append the lines to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.work = os.path.abspath(args.work or os.path.join("/tmp/ccfrec-scale", str(args.items)))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.stage:
        print(json.dumps(run_stage(args)), flush=True)
        return 0
    os.makedirs(args.work, exist_ok=True)
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
    for stage in args.stages:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), *forwarded,
                                "--work", args.work, "--stage", stage],
                               stdout=subprocess.PIPE, text=True)
        if child.returncode:
            print(f"stage {stage} failed (exit {child.returncode})", file=sys.stderr)
            return child.returncode
        line = child.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(line + "\n")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
