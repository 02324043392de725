"""The ExampleGen executor, which reads, splits and serializes inside its Beam pipeline, writes
exactly the examples (and slice features) and the catalog the library computes in memory, in
every format, on real Office data on 2 DirectRunner worker processes, and the dataset's
statistics on the artifact."""

import collections
import json
import os

import pytest
import tensorflow as tf

from tests import data_files
from tests.conftest import OFFICE
from tfx_pipeline.components import example_gen


def _run(input_base, format_name, output, tmp_path, beam_args=("--direct_running_mode=in_memory",)):
    """Runs the executor; returns ({split: [tf.train.Example]}, the artifact's properties)."""
    from google.protobuf import json_format
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / f"{output}-examples")
    config = example_gen.custom_config({"format": format_name, "output": output,
                                        "max_history": 20, "k_core": 0})
    names = [s.name for s in example_gen.input_config(output).splits]
    exec_properties = {
        "input_base": str(input_base),
        "input_config": json_format.MessageToJson(example_gen.input_config(output)),
        "output_config": "{}", "custom_config": json_format.MessageToJson(config),
        "output_data_format": 6, "output_file_format": 5, "span": 0, "version": None,
        "input_fingerprint": ""}
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=list(beam_args), tmp_dir=str(tmp_path / f"{output}-tmp") + "/",
        unique_id=output)
    example_gen.Executor(context).Do({}, {"examples": [examples]}, exec_properties)
    written = {}
    for split in names:
        files = tf.io.gfile.glob(os.path.join(examples.uri, f"Split-{split}", "*"))
        written[split] = [tf.train.Example.FromString(r.numpy()) for r in
                          tf.data.TFRecordDataset(files, compression_type="GZIP")]
    properties = {k: examples.get_int_custom_property(k)
                  for k in (*example_gen.STATISTICS,
                            *(f"examples_{s}" for s in names))}
    return written, properties


def _features(example):
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value)
        out[name] = tuple(v.decode() if isinstance(v, bytes) else v for v in values)
    return tuple(sorted(out.items()))


def _oracle(input_base, format_name):
    """The interaction examples with their slice features, from the library in memory."""
    from tf_ccfrec.data import readers, splits
    from tf_ccfrec import ranking

    data = readers.read(format_name, str(input_base))
    examples = splits.make_examples(data, max_history=20)
    item_ids = list(data.items)
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    counts = ranking.count_interactions(
        ((split, e.target, e.position, e.history[0]) for split in examples
         for e in examples[split]), index, len(item_ids))
    head = ranking.head_items(counts)
    expected = {}
    for split, rows in examples.items():
        expected[split] = collections.Counter()
        for e in rows:
            features = {"user_id": (e.user_id,), "history": tuple(e.history),
                        "target": (e.target,), "position": (e.position,),
                        "history_length": (len(e.history),),
                        "history_length_bucket": (example_gen.history_bucket(len(e.history)),),
                        "target_popularity": ("head" if head[index[e.target]] else "tail",)}
            if "categories" in data.views:
                features["target_category"] = (example_gen.top_level_category(
                    data.items[e.target].get("categories", "")),)
            expected[split][tuple(sorted(features.items()))] += 1
    return data, expected


@pytest.mark.parametrize("format_name,make", [
    ("p5", data_files.p5_recbole), ("recbole", data_files.recbole),
    ("amazon2023", data_files.amazon2023)])
def test_every_format_gives_the_librarys_examples(tmp_path, format_name, make):
    directory = tmp_path / "raw"
    make(str(directory))
    written, properties = _run(directory, format_name, "interactions", tmp_path)
    data, expected = _oracle(directory, format_name)
    for split in ("train", "valid", "test"):
        assert collections.Counter(map(_features, written[split])) == expected[split], split
    assert properties["users"] == len(data.sequences)
    assert properties["items"] == len(data.items)


def test_a_p5_user_on_two_lines_is_an_error(tmp_path):
    directory = tmp_path / "raw"
    data_files.p5_recbole(str(directory), sequences="1 1 2 3\n2 2 3 1 3\n1 3 2\n")
    with pytest.raises(Exception, match=r"toy_sequential_data.txt: user U1 appears on 2 lines"):
        _run(directory, "p5", "interactions", tmp_path)
    # No finished shard (Beam's staging directory of the failed write may stay in the output
    # directory, which TFX never publishes for a failed execution).
    assert not tf.io.gfile.glob(str(tmp_path / "interactions-examples" / "Split-*" / "data_*"))


TWO_WORKERS = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")


def _two_workers_match_the_library(directory, format_name, tmp_path):
    """Runs the interactions ExampleGen on 2 worker processes and checks every split and the
    statistics against the library; returns the dataset."""
    written, properties = _run(directory, format_name, "interactions", tmp_path, TWO_WORKERS)
    data, expected = _oracle(directory, format_name)
    for split in ("train", "valid", "test"):
        assert collections.Counter(map(_features, written[split])) == expected[split], split
        assert properties[f"examples_{split}"] == sum(expected[split].values())
    assert properties["users"] == len(data.sequences)
    assert properties["items"] == len(data.items)
    assert properties["interactions"] == sum(len(s) for s in data.sequences.values())
    return data


def test_p5_office_on_two_worker_processes(tmp_path):
    """Real Office laid out as P5 (read by Beam's text source, grouped by user) through 2
    DirectRunner worker processes: the library's examples and slices, and its statistics."""
    office = data_files.p5_from_lcrec(str(tmp_path / "raw"), OFFICE)
    assert len(_two_workers_match_the_library(office, "p5", tmp_path).sequences) == 4905


def test_office_on_two_worker_processes(tmp_path):
    """Real Office (4,905 users) through 2 DirectRunner worker processes: the same multiset of
    examples and slices as the library's, the statistics on the artifact, and the catalog."""
    from tf_ccfrec.data import tfrecords

    data = _two_workers_match_the_library(OFFICE, "lcrec", tmp_path)
    assert len(data.sequences) == 4905
    catalog, catalog_properties = _run(OFFICE, "lcrec", "catalog", tmp_path, TWO_WORKERS)
    assert sorted(map(_features, catalog["catalog"])) == sorted(
        _features(tfrecords.item_proto(i, data.items[i], data.numeric.get(i, {})))
        for i in data.items)
    assert catalog_properties["examples_catalog"] == len(data.items)
    assert json.loads(json.dumps(catalog_properties))["users"] == 4905
