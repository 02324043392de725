"""ExampleGen for raw recommendation datasets: a `FileBasedExampleGen` executor that reads a
dataset directory in one of `tf_ccfrec`'s formats and emits its leave-one-out examples, or its
item catalog, as tf.train.Examples.

The driver is TFX's own: it fingerprints the files under `input_base` that the split pattern
matches (default every file), so a changed dataset file makes ExampleGen, and everything
downstream, run again, and an unchanged one is served from the cache.

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

from typing import Any, Dict, List

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
              "on_error": "raise", **config}
    for name in ("max_history", "k_core"):  # Struct numbers are floats
        config[name] = int(config[name])
    if "format" not in config:
        raise ValueError("ExampleGen custom_config needs 'format' (one of tf_ccfrec's dataset "
                         "formats: p5, lcrec, recbole, amazon2023)")
    if config["output"] not in OUTPUTS:
        raise ValueError(f"ExampleGen custom_config 'output' must be one of {OUTPUTS}, "
                         f"got {config['output']!r}")
    return config


def interaction_examples(data, max_history: int) -> Dict[str, List[bytes]]:
    """Serialized interaction examples per split, with the slice features."""
    from tf_ccfrec.data import splits, tfrecords
    from tf_ccfrec.training import evaluation

    examples = splits.make_examples(data, max_history=max_history)
    item_ids = list(data.items)
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    counts = evaluation.count_interactions(
        ((split, e.target, e.position, e.history[0]) for split in examples
         for e in examples[split]), index, len(item_ids))
    head = evaluation.head_items(counts)
    categories = ({item: top_level_category(text.get(CATEGORY_VIEW, ""))
                   for item, text in data.items.items()} if CATEGORY_VIEW in data.views else None)

    def serialize(example) -> bytes:
        proto = tfrecords.example_proto(example)
        feature = proto.features.feature
        feature["history_length"].int64_list.value.append(len(example.history))
        values = {"history_length_bucket": history_bucket(len(example.history)),
                  "target_popularity": "head" if head[index[example.target]] else "tail"}
        if categories is not None:
            values["target_category"] = categories.get(example.target, "")
        for name, value in values.items():
            feature[name].bytes_list.value.append(value.encode())
        return proto.SerializeToString()

    return {split: [serialize(e) for e in examples[split]] for split in examples}


def catalog_examples(data) -> List[bytes]:
    from tf_ccfrec.data import tfrecords

    return [tfrecords.item_proto(i, data.items[i], data.numeric.get(i, {})).SerializeToString()
            for i in data.items]


STATISTICS = ("users", "items", "interactions")  # and examples_<split>: artifact properties


class Executor(BaseExampleGenExecutor):
    """Reads the dataset once and hands each split to Beam (the readers parse whole files;
    the writing, sharding and statistics downstream are Beam's).

    The output artifact carries the dataset's statistics as custom properties: `users`,
    `items`, `interactions` and `examples_<split>` (what `ccfrec pipeline run` prints)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._statistics: Dict[str, int] = {}
        super().Do(input_dict, output_dict, exec_properties)
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
            for name, value in self._statistics.items():
                examples.set_int_custom_property(name, int(value))

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("splits come from GenerateExamplesByBeam")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: Dict[str, Any]) -> Dict[str, beam.PCollection]:
        from tf_ccfrec.data import filtering, readers

        config = read_config(exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                                  input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                                  output_config)
        names = example_gen_utils.generate_output_split_names(input_config, output_config)
        data = readers.read(config["format"], exec_properties[standard_component_specs.
                                                              INPUT_BASE_KEY],
                            views=config["views"], on_error=config["on_error"])
        data = filtering.k_core(data, config["k_core"])
        if config["output"] == "catalog":
            records = {CATALOG_SPLIT: catalog_examples(data)}
        else:
            records = interaction_examples(data, config["max_history"])
        self._statistics = {
            "users": len(data.sequences), "items": len(data.items),
            "interactions": sum(len(seq) for seq in data.sequences.values()),
            **{f"examples_{split}": len(rows) for split, rows in records.items()}}
        unknown = set(names) - set(records)
        if unknown:
            raise ValueError(f"ExampleGen ({config['output']}) has splits {sorted(records)}; the "
                             f"input_config asks for {sorted(unknown)}")
        return {name: pipeline | f"Create[{name}]" >> beam.Create(records[name], reshuffle=False)
                for name in names}


def input_config(output: str, pattern: str = "*") -> example_gen_pb2.Input:
    """One input split per output split, all over the dataset's files (`pattern`)."""
    names = INTERACTION_SPLITS if output == "interactions" else (CATALOG_SPLIT,)
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=n, pattern=pattern)
                                         for n in names])
