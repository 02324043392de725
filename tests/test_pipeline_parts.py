"""The pipeline's parts on their own: slice features, the preprocessing_fn under tf.Transform,
the TFMA retrieval metrics against the library's definitions, the anomaly message, the report."""

import numpy as np
import pytest

from tfx_pipeline.components import example_gen


def test_slice_features():
    assert [example_gen.history_bucket(n) for n in (1, 2, 4, 5, 9, 10, 20)] == \
        ["01", "02-04", "02-04", "05-09", "05-09", "10-20", "10-20"]
    assert example_gen.top_level_category(
        "Office Electronics, Telephones & Accessories, Corded Telephones") == "Office Electronics"
    assert example_gen.top_level_category("") == ""


def test_example_gen_settings_round_trip():
    from tfx.types import standard_component_specs
    from tfx.utils import proto_utils

    proto = example_gen.custom_config({"format": "p5", "output": "catalog", "max_history": 30,
                                       "views": ["title", "brand"], "item_format": "jsonl"})
    settings = example_gen.read_config(
        {standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(proto)})
    assert settings == {"format": "p5", "output": "catalog", "max_history": 30, "k_core": 0,
                        "views": ["title", "brand"], "on_error": "raise",
                        "item_format": "jsonl", "window_spans": 1, "pattern": ""}
    window = example_gen.custom_config({"format": "lcrec", "window_spans": 3,
                                        "pattern": "interactions/span-{SPAN}/*"})
    assert example_gen.read_config({standard_component_specs.CUSTOM_CONFIG_KEY:
                                    proto_utils.proto_to_json(window)})["window_spans"] == 3
    for bad, message in (({"format": "lcrec", "window_spans": 2}, "needs the input 'pattern'"),
                         ({"format": "lcrec", "item_format": "jsonl"}, "for the catalog")):
        with pytest.raises(ValueError, match=message):
            example_gen.read_config({standard_component_specs.CUSTOM_CONFIG_KEY:
                                     proto_utils.proto_to_json(example_gen.custom_config(bad))})
    with pytest.raises(ValueError, match="needs 'format'"):
        example_gen.read_config({})


def test_preprocessing_fn_vocabulary_and_indices(tmp_path):
    """Under tf.Transform: a frequency-ordered vocabulary of every id, ids NFKC-normalized and
    stripped, unknown ids -> 0, head flags."""
    import tensorflow as tf
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from tfx_pipeline.models import preprocessing

    spec = {"history": tf.io.VarLenFeature(tf.string),
            "target": tf.io.FixedLenFeature([], tf.string),
            "position": tf.io.FixedLenFeature([], tf.int64),
            "target_popularity": tf.io.FixedLenFeature([], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    rows = [{"history": [b"a", b"b"], "target": b"a", "position": 2, "target_popularity": b"head"},
            {"history": [b"a"], "target": b"c", "position": 1, "target_popularity": b"tail"},
            {"history": [b" b\xe3\x80\x80"], "target": b"a", "position": 1,
             "target_popularity": b"head"}]
    with tft_beam.Context(temp_dir=str(tmp_path)):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn)
        unseen, _ = (([{"history": [b"zzz", b"c"], "target": b"zzz", "position": 3,
                        "target_popularity": b"tail"}], metadata), transform_fn) \
            | tft_beam.TransformDataset()
    # a: 4 times, b: 2 (one written " b" + ideographic space), c: 1 -> indices 1, 2, 3.
    assert [list(r["history"]) for r in transformed] == [[1, 2], [1], [2]]
    assert [int(r["target"]) for r in transformed] == [1, 3, 1]
    assert [int(r["target_is_head"]) for r in transformed] == [1, 0, 1]
    assert list(unseen[0]["history"]) == [0, 3] and int(unseen[0]["target"]) == 0


def test_retrieval_metrics_match_the_library():
    from tensorflow_model_analysis.metrics import metric_types

    from tf_ccfrec.training.evaluation import metrics_from_ranks
    from tfx_pipeline.models import retrieval_metrics

    rng = np.random.default_rng(0)
    full = rng.integers(-1, 40, 200)  # -1: unknown target, a miss
    sampled = rng.integers(-1, 30, 200)
    values = {}
    for cls, k in ((retrieval_metrics.RecallAtK, 5), (retrieval_metrics.RecallAtK, 10),
                   (retrieval_metrics.NDCGAtK, 10), (retrieval_metrics.SampledHRAtK, 10),
                   (retrieval_metrics.SampledNDCGAtK, 10)):
        [computation] = cls(k=k).computations()
        combiner = computation.combiner
        halves = []
        for part in (slice(0, 120), slice(120, 200)):
            accumulator = combiner.create_accumulator()
            for f, s in zip(full[part], sampled[part]):
                inputs = metric_types.StandardMetricInputs(
                    predictions={"target_rank": np.array([f]), "sampled_rank": np.array([s])})
                accumulator = combiner.add_input(accumulator, inputs)
            halves.append(accumulator)
        [(key, value)] = combiner.extract_output(combiner.merge_accumulators(halves)).items()
        values[key.name] = value
    miss = lambda r: np.where(r < 0, 10 ** 6, r)  # noqa: E731
    expected = metrics_from_ranks(miss(full), (5, 10))
    assert values["recall@5"] == pytest.approx(expected["recall@5"])
    assert values["recall@10"] == pytest.approx(expected["recall@10"])
    assert values["ndcg@10"] == pytest.approx(expected["ndcg@10"])
    sampled_expected = metrics_from_ranks(miss(sampled), (10,), prefix="hr")
    assert values["sampled_hr@10"] == pytest.approx(sampled_expected["hr@10"])
    assert values["sampled_ndcg@10"] == pytest.approx(sampled_expected["ndcg@10"])


def test_anomaly_message_names_split_feature_and_problem(tmp_path):
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from tfx_pipeline.components import anomalies_gate

    for split, bad in (("train", True), ("test", False)):
        anomalies = anomalies_pb2.Anomalies()
        if bad:
            info = anomalies.anomaly_info["history"]
            info.short_description = "Superfluous values"
            info.description = "Some examples have more values than expected."
        (tmp_path / f"Split-{split}").mkdir()
        (tmp_path / f"Split-{split}" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())
    found = anomalies_gate.split_anomalies(str(tmp_path), ["train", "test"])
    assert list(found) == ["train"]
    message = anomalies_gate.message(found, str(tmp_path))
    assert "split train: history: Superfluous values (Some examples have more values" in message


def test_report_markdown_and_chart(tmp_path):
    from tfx_pipeline.components import evaluation_report

    rows = [{"slice": "overall", "example_count": 100.0, "recall@10": 0.1, "ndcg@10": 0.05},
            {"slice": "target_popularity=head", "example_count": 20.0, "recall@10": 0.2}]
    text = evaluation_report.markdown(rows, False, "/x", ["recall@10 (value, overall): low"])
    assert "Model blessed: **no**" in text and "- recall@10 (value, overall): low" in text
    assert "| target_popularity=head | 20 |" in text
    # The sampled protocol the report states is the model's, not a fixed one.
    assert "100 negatives drawn uniformly from the items outside the user's history" in text
    text = evaluation_report.markdown(
        rows, True, "/x", sampled=evaluation_report.sampled_description(50, "uniform"))
    assert "50 negatives drawn uniformly from every item other than the target" in text
    evaluation_report.chart(rows, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
