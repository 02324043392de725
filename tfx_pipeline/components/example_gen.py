"""ExampleGen for raw recommendation datasets: a `FileBasedExampleGen` executor that reads a
dataset directory in one of `tf_ccfrec`'s formats and emits its leave-one-out examples, or its
item catalog, as tf.train.Examples.

The driver is TFX's own: it fingerprints the files under `input_base` that the split pattern
matches (default every file), so a changed dataset file makes ExampleGen, and everything
downstream, run again, and an unchanged one is served from the cache. A pattern may hold TFX's
`{SPAN}` (and `{VERSION}`): the driver picks the newest span, records it on the output
artifact, and the executor reads the directory of the resolved pattern (e.g.
`interactions/span-{SPAN}/*` -> `<input_base>/interactions/span-3/`) as the dataset; with
`custom_config["window_spans"]` = N (and the unresolved `pattern`), the newest N spans'
directories, each split leave-one-out on its own, into one artifact (the Trainer's rolling
window; it compiles for Kubeflow, where a span-range resolver does not).

The catalog may come as item files instead (`custom_config["item_format"]`: jsonl, lcrec or
amazon2023, `tf_ccfrec.data.item_files.read_item_file`): every file the resolved catalog
pattern matches is read, e.g. one `catalog/span-{SPAN}/items.jsonl` a day.

Interaction examples (splits train, valid, test; `custom_config["output"] == "interactions"`):

    user_id  bytes          history  bytes list (oldest first, <= max_history)
    target   bytes          position int64 (the target's position in the user's sequence)
    history_length         int64  items in `history`
    history_length_bucket  bytes  "01", "02-04", "05-09", "10-20" (TFMA slice)
    target_popularity      bytes  "head" (the 20% most interacted items in training) or "tail"
    target_category        bytes  the target's top-level category (only when the catalog has
                                  a "categories" view)

Catalog examples (split catalog; `custom_config["output"] == "catalog"`): the prepared
catalog's `item_id`, `text_<view>` (and `num_<field>`) features, in the dataset's item order.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Tuple

import apache_beam as beam
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

OUTPUTS = ("interactions", "catalog")
INTERACTION_SPLITS = ("train", "valid", "test")
CATALOG_SPLIT = "catalog"
HISTORY_BUCKETS = ((1, "01"), (4, "02-04"), (9, "05-09"))
CATEGORY_VIEW = "categories"


def history_bucket(length: int) -> str:
    """The TFMA slice of a history length: "01", "02-04", "05-09" or "10-20"."""
    for upper, name in HISTORY_BUCKETS:
        if length <= upper:
            return name
    return "10-20"


def top_level_category(text: str) -> str:
    """"Office Electronics, Telephones & Accessories" -> "Office Electronics"."""
    return text.split(",")[0].strip()


def custom_config(settings: Dict[str, Any]) -> example_gen_pb2.CustomConfig:
    """ExampleGen's `custom_config` proto holding `settings` (a Struct in its Any field):
    format (required), output, max_history, k_core, views, on_error."""
    from google.protobuf import any_pb2, struct_pb2

    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in settings.items() if v is not None})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def read_config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    """The executor's settings from `custom_config`, with defaults, checked."""
    from google.protobuf import json_format, struct_pb2

    config = {}
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if raw:
        proto = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(raw, proto)
        struct = struct_pb2.Struct()
        proto.custom_config.Unpack(struct)
        config = json_format.MessageToDict(struct)
    config = {"output": "interactions", "max_history": 20, "k_core": 0, "views": None,
              "on_error": "raise", "item_format": "", "window_spans": 1, "pattern": "",
              **config}
    for name in ("max_history", "k_core", "window_spans"):  # Struct numbers are floats
        config[name] = int(config[name])
    if "format" not in config:
        raise ValueError("ExampleGen custom_config needs 'format' (one of tf_ccfrec's dataset "
                         "formats: p5, lcrec, recbole, amazon2023)")
    if config["output"] not in OUTPUTS:
        raise ValueError(f"ExampleGen custom_config 'output' must be one of {OUTPUTS}, "
                         f"got {config['output']!r}")
    if config["item_format"] and config["output"] != "catalog":
        raise ValueError("ExampleGen custom_config 'item_format' is for the catalog output")
    if config["window_spans"] > 1 and "{SPAN}" not in config["pattern"]:
        raise ValueError("ExampleGen custom_config 'window_spans' needs the input 'pattern' "
                         "with {SPAN}")
    return config


def window_directories(input_base: str, pattern: str, span: int, count: int) -> List[str]:
    """The directories of the newest `count` spans up to `span` of a `{SPAN}` pattern (e.g.
    "interactions/span-{SPAN}/*"), oldest first. Older spans are read as they are: TFX's spans
    do not change once written (a changed span is a new `{VERSION}`, not supported here).

    Raises:
      ValueError: the pattern's directory has no {SPAN}, or holds {VERSION}.
    """
    import re

    from tf_ccfrec import storage

    folder = os.path.dirname(pattern)
    if "{SPAN}" not in folder or "{VERSION}" in pattern:
        raise ValueError(f"a window of spans needs {{SPAN}} in the pattern's directory and no "
                         f"{{VERSION}} (got {pattern!r})")
    matcher = re.compile(re.escape(folder).replace(re.escape("{SPAN}"), r"(\d+)") + "$")
    found = {}
    for path in storage.glob(storage.join(input_base, folder.replace("{SPAN}", "*"))):
        relative = os.path.relpath(path, input_base) if "://" not in path else \
            path[len(input_base.rstrip("/")) + 1:]
        match = matcher.match(relative.rstrip("/"))
        if match and int(match.group(1)) <= span and storage.isdir(path):
            found[int(match.group(1))] = path
    return [found[s] for s in sorted(found)[-count:]]


def merge_summaries(summaries) -> Dict[str, Any]:
    """One catalog summary of several spans' (`catalog_summary`): items in order of first
    appearance, categories merged, users and interactions summed."""
    items: Dict[str, None] = {}
    categories = None
    users = interactions = 0
    for summary in summaries:
        items.update(dict.fromkeys(summary["items"]))
        if summary.get("categories") is not None:
            categories = {**(categories or {}), **summary["categories"]}
        users += summary.get("users", 0)
        interactions += summary.get("interactions", 0)
    return {"items": list(items), "categories": categories, "users": users,
            "interactions": interactions}


def dataset_directory(input_base: str, input_config: example_gen_pb2.Input) -> str:
    """The directory the (span-resolved) split pattern names: `<input_base>/<its directory>`
    (`input_base` itself for a pattern of files at its top, such as the default "*")."""
    from tf_ccfrec import storage

    patterns = {split.pattern for split in input_config.splits}
    if len(patterns) != 1:
        raise ValueError(f"ExampleGen reads one dataset: its splits' patterns differ "
                         f"({sorted(patterns)})")
    folder = os.path.dirname(patterns.pop())
    if any(c in folder for c in "*?["):
        raise ValueError(f"ExampleGen pattern directory {folder!r} holds a wildcard; name one "
                         "directory per span (e.g. 'interactions/span-{SPAN}/*')")
    return storage.join(input_base, folder) if folder else input_base


def read_item_files(input_base: str, input_config: example_gen_pb2.Input, views,
                    item_format: str) -> Dict[str, Dict[str, str]]:
    """{item id: {view: text}} of every file the catalog pattern matches (item files).

    Raises:
      DataError: a bad item file, an id in two files, or no file (naming them)."""
    from tf_ccfrec import storage
    from tf_ccfrec.data.errors import DataError
    from tf_ccfrec.data.io import SPEC_VIEWS
    from tf_ccfrec.data.item_files import read_item_file

    pattern = storage.join(input_base, input_config.splits[0].pattern)
    files = sorted(storage.glob(pattern))
    if not files:
        raise DataError(f"{pattern}: no item files")
    items: Dict[str, Dict[str, str]] = {}
    for path in files:
        for item, texts in read_item_file(path, list(views or SPEC_VIEWS),
                                          item_format).items():
            if item in items:
                raise DataError(f"{path}: item {item!r} is also in an earlier file of {pattern}")
            items[item] = texts
    return items


STATISTICS = ("users", "items", "interactions")  # and examples_<split>: artifact properties
STATISTICS_FILE = "dataset_statistics.json"  # in the executor's temporary directory


def serialize_example(split_and_example, head, categories) -> Tuple[str, bytes]:
    """(split, serialized interaction tf.Example with the slice features)."""
    from tf_ccfrec.data import tfrecords

    split, example = split_and_example
    proto = tfrecords.example_proto(example)
    feature = proto.features.feature
    feature["history_length"].int64_list.value.append(len(example.history))
    values = {"history_length_bucket": history_bucket(len(example.history)),
              "target_popularity": "head" if example.target in head else "tail"}
    if categories is not None:
        values["target_category"] = categories.get(example.target, "")
    for name, value in values.items():
        feature[name].bytes_list.value.append(value.encode())
    return split, proto.SerializeToString()


def counted_items(user_row) -> Iterator[str]:
    """The items one user contributes to the popularity counts
    (`ranking.count_interactions`): every training target, and the first item (the history of
    the example at position 1, in whichever split)."""
    _, sequence, roles = user_row
    for position, role in enumerate(roles):
        if position == 0:
            continue
        if role == "train":
            yield sequence[position]
        if position == 1:
            yield sequence[0]


def head_set(counts: Dict[str, int], catalog: Dict[str, Any]) -> frozenset:
    """The head items (`ranking.head_items`: the most counted 20%, ties by catalog order)."""
    import numpy as np

    from tf_ccfrec import ranking

    item_ids = catalog["items"]
    array = np.zeros(len(item_ids) + 1, np.int64)
    array[1:] = [counts.get(item, 0) for item in item_ids]
    head = ranking.head_items(array)
    return frozenset(item for item, is_head in zip(item_ids, head[1:]) if is_head)


def catalog_summary(items: Dict[str, Dict[str, str]], views) -> Dict[str, Any]:
    """What every worker needs of the catalog: the item ids in order and, when the catalog has
    a categories view, each item's top-level category."""
    categories = ({item: top_level_category(text.get(CATEGORY_VIEW, ""))
                   for item, text in items.items()} if CATEGORY_VIEW in views else None)
    return {"items": list(items), "categories": categories}


class ReadDataset(beam.DoFn):
    """Reads the dataset directory on a Beam worker (not in the executor's process) with the
    library's reader and k-core filter, and emits it one record at a time: per user
    (user, sequence, the split of each position), the catalog summary (item ids in order,
    top-level categories, the numbers of users and interactions) on CATALOG, and each item
    (id, texts, numeric fields) on ITEMS."""

    CATALOG, ITEMS = "catalog", "items"

    def __init__(self, config: Dict[str, Any]):
        self.config = config

    def process(self, input_base: str):
        from tf_ccfrec.data import filtering, readers, splits

        config = self.config
        if config["item_format"]:  # item files: the catalog only
            items = read_item_files(input_base, config["input_config"], config["views"],
                                    config["item_format"])
            views = list(next(iter(items.values())))
            yield beam.pvalue.TaggedOutput(self.CATALOG, {
                **catalog_summary(items, views), "users": 0, "interactions": 0})
            for item, texts in items.items():
                yield beam.pvalue.TaggedOutput(self.ITEMS, (item, texts, {}))
            return
        data = readers.read(config["format"], input_base, views=config["views"],
                            on_error=config["on_error"])
        data = filtering.k_core(data, config["k_core"])
        yield beam.pvalue.TaggedOutput(self.CATALOG, {
            **catalog_summary(data.items, data.views), "users": len(data.sequences),
            "interactions": sum(len(seq) for seq in data.sequences.values())})
        if config["output"] == "catalog":
            for item in data.items:
                yield beam.pvalue.TaggedOutput(self.ITEMS, (item, data.items[item],
                                                            data.numeric.get(item, {})))
            return
        for user, sequence in data.sequences.items():
            yield user, sequence, splits.roles(data, user)


class ReadP5Catalog(beam.DoFn):
    """The catalog summary of a P5 directory (id maps and item text, no sequences), on a
    worker."""

    def __init__(self, config: Dict[str, Any]):
        self.config = config

    def process(self, input_base: str):
        from tf_ccfrec.data import p5
        from tf_ccfrec.data.errors import ErrorPolicy

        _, sequence_path, maps_path = p5.locate(input_base)
        _, id2item = p5.read_id_maps(maps_path)
        items, views, _ = p5.read_catalog(input_base, id2item, self.config["views"],
                                          ErrorPolicy(self.config["on_error"]),
                                          os.path.basename(sequence_path))
        yield catalog_summary(items, views)


class ParseP5Lines(beam.DoFn):
    """Lines of a P5 `<d>_sequential_data.txt`, which Beam's text source splits over the
    workers, -> (raw user id, [raw item id, ...]) with the dataset's id maps (read once a
    worker). Messages name the file and the offending id (a split text source knows no line
    numbers); skipped lines count in the `skipped_lines` metric."""

    def __init__(self, sequence_path: str, maps_path: str, on_error: str):
        self.sequence_path, self.maps_path, self.on_error = sequence_path, maps_path, on_error
        self.skipped = beam.metrics.Metrics.counter("ccfrec_example_gen", "skipped_lines")

    def setup(self):
        from tf_ccfrec.data import p5

        self.id2user, self.id2item = p5.read_id_maps(self.maps_path)

    def process(self, line: str):
        from tf_ccfrec.data import p5
        from tf_ccfrec.data.errors import ErrorPolicy

        parsed = p5.parse_sequence_line(self.sequence_path, line, self.id2user, self.id2item,
                                        ErrorPolicy(self.on_error))
        if parsed is None:
            if line.strip():
                self.skipped.inc()
            return
        yield parsed


def _one_sequence_each(user_and_sequences, path: str, on_error: str):
    """(user, sequence, roles) after the shuffle by user; a user on several lines is an error
    (with on_error="skip", dropped)."""
    from tf_ccfrec.data import splits
    from tf_ccfrec.data.errors import DataError

    user, sequences = user_and_sequences
    sequences = list(sequences)
    if len(sequences) > 1:
        if on_error == "raise":
            raise DataError(f"{path}: user {user} appears on {len(sequences)} lines")
        return
    yield user, sequences[0], splits.sequence_roles(len(sequences[0]))


def _read_whole(pipeline, config: Dict[str, Any], input_base: str, label: str = ""):
    """`ReadDataset` on one worker: its outputs "users", CATALOG and ITEMS."""
    return (pipeline
            | f"InputBase{label}" >> beam.Create([input_base])
            | f"ReadDataset{label}" >> beam.ParDo(ReadDataset(config)).with_outputs(
                ReadDataset.CATALOG, ReadDataset.ITEMS, main="users"))


def _with_counts(summary, users, interactions) -> Dict[str, Any]:
    return {**summary, "users": users, "interactions": interactions}


def _catalog_example(item_row) -> bytes:
    from tf_ccfrec.data import tfrecords

    item, texts, numeric = item_row
    return tfrecords.item_proto(item, texts, numeric).SerializeToString()


def _user_examples(user_row, max_history: int):
    from tf_ccfrec.data import splits

    return splits.user_examples(*user_row, max_history)


def _statistics_json(_, summary, **examples) -> str:
    return json.dumps({"users": summary["users"], "items": len(summary["items"]),
                       "interactions": summary["interactions"],
                       **{f"examples_{split}": n for split, n in examples.items()}})


class Executor(BaseExampleGenExecutor):
    """Reads, splits and serializes inside the Beam pipeline: P5 sequence files are read by
    Beam's text source split over the workers and grouped by user; other formats are read on a
    worker (`ReadDataset`) and their users shuffled over the workers. The popularity counts are
    a combine and the head items a side input, and each worker turns its users into examples;
    TFX's base executor writes the splits. The executor's own process holds no dataset (on the
    DirectRunner its control process still holds shuffled data; on Dataflow the shuffle service
    does).

    The output artifact carries the dataset's statistics as custom properties: `users`,
    `items`, `interactions` and `examples_<split>` (what `ccfrec pipeline run` prints), which the
    pipeline writes to the executor's temporary directory."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from tf_ccfrec import storage

        super().Do(input_dict, output_dict, exec_properties)
        statistics = storage.read_json(storage.join(self._get_tmp_dir(), STATISTICS_FILE))
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
            for name, value in statistics.items():
                examples.set_int_custom_property(name, int(value))

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("splits come from GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
        from tf_ccfrec import storage

        config = read_config(exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                                  input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                                  output_config)
        names = example_gen_utils.generate_output_split_names(input_config, output_config)
        produced = (CATALOG_SPLIT,) if config["output"] == "catalog" else INTERACTION_SPLITS
        unknown = set(names) - set(produced)
        if unknown:
            raise ValueError(f"ExampleGen ({config['output']}) has splits {sorted(produced)}; "
                             f"the input_config asks for {sorted(unknown)}")
        base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        if config["item_format"]:
            input_base = base
            config = {**config, "input_config": input_config}
        else:
            input_base = dataset_directory(base, input_config)
        if config["output"] == "catalog":
            read = _read_whole(pipeline, config, input_base)
            summary = read[ReadDataset.CATALOG]
            records = {CATALOG_SPLIT: (read[ReadDataset.ITEMS]
                                       | "ShuffleItems" >> beam.Reshuffle()
                                       | "CatalogExample" >> beam.Map(_catalog_example))}
        else:
            if config["window_spans"] > 1:
                directories = window_directories(
                    base, config["pattern"], int(exec_properties["span"]),
                    config["window_spans"])
                catalog, rows = self._window(pipeline, config, directories)
            else:
                catalog, rows = self._users(pipeline, config, input_base)
            counts = (rows | "CountedItems" >> beam.FlatMap(counted_items)
                      | "Count" >> beam.combiners.Count.PerElement()
                      | "Counts" >> beam.combiners.ToDict())
            head = counts | "Head" >> beam.Map(head_set,
                                               catalog=beam.pvalue.AsSingleton(catalog))
            examples = (rows
                        | "Examples" >> beam.FlatMap(_user_examples,
                                                     max_history=config["max_history"])
                        | "Serialize" >> beam.Map(
                            serialize_example, head=beam.pvalue.AsSingleton(head),
                            categories=beam.pvalue.AsSingleton(
                                catalog | "Categories" >> beam.Map(lambda c: c["categories"]))))
            parts = examples | "Splits" >> beam.Partition(
                lambda kv, n: INTERACTION_SPLITS.index(kv[0]), len(INTERACTION_SPLITS))
            records = {split: part | f"Value[{split}]" >> beam.Map(lambda kv: kv[1])
                       for split, part in zip(INTERACTION_SPLITS, parts)}
            users = rows | "Users" >> beam.combiners.Count.Globally()
            interactions = (rows | "Lengths" >> beam.Map(lambda row: len(row[1]))
                            | "Interactions" >> beam.CombineGlobally(sum))
            summary = catalog | "Summary" >> beam.Map(
                _with_counts, users=beam.pvalue.AsSingleton(users),
                interactions=beam.pvalue.AsSingleton(interactions))
        catalog_side = beam.pvalue.AsSingleton(summary)
        counted = {split: beam.pvalue.AsSingleton(
            records[split] | f"Count[{split}]" >> beam.combiners.Count.Globally())
            for split in produced}
        _ = (pipeline
             | "StatisticsSeed" >> beam.Create([None])
             | "Statistics" >> beam.Map(_statistics_json, summary=catalog_side, **counted)
             | "WriteStatistics" >> beam.io.WriteToText(
                 storage.join(self._get_tmp_dir(), STATISTICS_FILE), num_shards=1,
                 shard_name_template=""))
        return {name: records[name] for name in names}

    @staticmethod
    def _window(pipeline, config, directories):
        """`_users` of several spans' directories (each read whole by a worker): one catalog
        summary, every span's users. Each span is split leave-one-out on its own."""
        reads = [_read_whole(pipeline, config, d, f"[span {i}]")
                 for i, d in enumerate(directories)]
        catalog = ([r[ReadDataset.CATALOG] for r in reads]
                   | "FlattenCatalogs" >> beam.Flatten()
                   | "MergeCatalogs" >> beam.CombineGlobally(merge_summaries))
        rows = ([r.users for r in reads] | "FlattenUsers" >> beam.Flatten()
                | "ShuffleUsers" >> beam.Reshuffle())
        return catalog, rows

    @staticmethod
    def _users(pipeline, config, input_base):
        """(the catalog summary, (user, sequence, roles) per user shuffled over the workers).

        P5 sequences (one line a user) are read by Beam's text source, split over the workers,
        and grouped by user; the other formats, and any k-core filter (which needs the whole
        dataset), are read whole by one worker (`ReadDataset`) and then shuffled."""
        if config["format"] == "p5" and config["k_core"] <= 1:
            from tf_ccfrec.data import p5

            _, sequence_path, maps_path = p5.locate(input_base)
            catalog = (pipeline | "InputBase" >> beam.Create([input_base])
                       | "ReadCatalog" >> beam.ParDo(ReadP5Catalog(config)))
            rows = (pipeline
                    | "ReadSequences" >> beam.io.ReadFromText(sequence_path)
                    | "ParseSequences" >> beam.ParDo(ParseP5Lines(sequence_path, maps_path,
                                                                  config["on_error"]))
                    | "ShuffleByUser" >> beam.GroupByKey()
                    | "OneSequenceEach" >> beam.FlatMap(_one_sequence_each, path=sequence_path,
                                                        on_error=config["on_error"]))
            return catalog, rows
        read = _read_whole(pipeline, config, input_base)
        return read[ReadDataset.CATALOG], read.users | "ShuffleUsers" >> beam.Reshuffle()


def input_config(output: str, pattern: str = "*") -> example_gen_pb2.Input:
    """One input split per output split, all over the dataset's files (`pattern`)."""
    names = INTERACTION_SPLITS if output == "interactions" else (CATALOG_SPLIT,)
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=n, pattern=pattern)
                                         for n in names])
