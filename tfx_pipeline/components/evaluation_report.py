"""EvaluationReportGen: TFMA's output as a page people read: `report.md` (blessing, failed
thresholds, the slice tables of the validation split the blessing was decided on and of the test
split reported beside it) and `recall_at_10.png` (test Recall@10 per slice), in its own artifact
directory beside the Evaluators'; `report.json` holds the same numbers for programs."""


import io
from typing import Any, Dict, List, Optional, Tuple

from tfx import v1 as tfx
from tfx.types import artifact, standard_artifacts

from tf_ccfrec import storage
from tfx_pipeline.models.retrieval_metrics import metric_names

REPORT_FILE = "report.md"
CHART_FILE = "recall_at_10.png"
JSON_FILE = "report.json"
COLUMNS = ["example_count"] + metric_names()


class EvaluationReport(artifact.Artifact):
    """A directory with report.md, report.json and recall_at_10.png."""

    TYPE_NAME = "tfx_pipeline.EvaluationReport"  # a Kubeflow V2 title and import path


def slice_name(slice_key: Tuple) -> str:
    """TFMA slice key (((feature, value), ...)) -> "feature=value" ("overall" for ())."""
    return ", ".join(f"{f}={v}" for f, v in slice_key) or "overall"


def _value(metric: Dict[str, Any]):
    for key in ("doubleValue", "double_value"):
        if key in metric:
            return float(metric[key])
    return None


def slice_table(evaluation_uri: str) -> List[Dict[str, Any]]:
    """[{"slice": name, metric: value, ...}] per slice of a TFMA evaluation (the candidate's
    metrics when a baseline was evaluated too), overall first."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri, model_name="candidate")
    if not result.slicing_metrics:  # no baseline: the single model has no name
        result = tfma.load_eval_result(evaluation_uri)
    rows = []
    for slice_key, metrics in result.slicing_metrics:
        by_output = metrics.get("", {}).get("", {})
        row = {"slice": slice_name(slice_key)}
        for name in COLUMNS:
            if name in by_output:
                row[name] = _value(by_output[name])
        rows.append(row)
    rows.sort(key=lambda r: (r["slice"] != "overall", r["slice"]))
    return rows


def validation_failures(evaluation_uri: str) -> List[str]:
    """The failed thresholds of a TFMA evaluation, one line each ("" slice = overall)."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    lines = []
    for per_slice in result.metric_validations_per_slice:
        where = ", ".join(f"{k.column}={k.bytes_value.decode() or k.int64_value or k.float_value}"
                          for k in per_slice.slice_key.single_slice_keys) or "overall"
        for failure in per_slice.failures:
            kind = "change vs. baseline" if failure.metric_key.is_diff else "value"
            lines.append(f"{failure.metric_key.name} ({kind}, {where}): {failure.message}")
    return lines


def _table(rows: List[Dict[str, Any]], split: str) -> List[str]:
    overall = rows[0] if rows and rows[0]["slice"] == "overall" else {}
    lines = []
    if overall:
        lines += [f"Overall ({split}): " + ", ".join(
            f"{name} {overall[name]:.4f}" for name in COLUMNS[1:]
            if overall.get(name) is not None), ""]
    lines += [f"| slice ({split}) | " + " | ".join(COLUMNS) + " |",
              "|---" * (len(COLUMNS) + 1) + "|"]
    for row in rows:
        cells = []
        for name in COLUMNS:
            value = row.get(name)
            cells.append("" if value is None else
                         f"{int(value):,}" if name == "example_count" else f"{value:.4f}")
        lines.append(f"| {row['slice']} | " + " | ".join(cells) + " |")
    return lines + [""]


def sampled_description(negatives: int = 100, protocol: str = "unseen") -> str:
    """What the sampled columns rank: the model's `serve_tf_examples` draws (its training
    config's `sampled_negatives` and `sampled_protocol`, `ranking.draw_negatives`)."""
    pool = ("the items outside the user's history and target" if protocol == "unseen"
            else "every item other than the target")
    return (f"sampled = the target among itself and {negatives} negatives drawn uniformly from "
            f"{pool}; ties count against the target.")


def markdown(valid_rows: List[Dict[str, Any]], blessed: bool, evaluation_uri: str,
             validation: Optional[List[str]] = None,
             test_rows: Optional[List[Dict[str, Any]]] = None,
             test_evaluation_uri: str = "", sampled: str = "") -> str:
    """The report page: the blessing (decided on the valid split), failed thresholds, the
    valid split's slice table, then the test split's (reported, never gated on)."""
    lines = ["# CCFRec evaluation (TFMA)", "",
             f"Model blessed: **{'yes' if blessed else 'no'}**, decided on the **valid** split "
             f"(`{evaluation_uri}`)."
             + (f" The **test** split is reported beside it and never gated on "
                f"(`{test_evaluation_uri}`)." if test_rows is not None else ""),
             "", "Full ranking over the whole catalog, leave-one-out targets; "
             + (sampled or sampled_description()), ""]
    if validation:
        lines += ["Failed thresholds (valid split):", ""] + [f"- {line}" for line in validation]
        lines += [""]
    lines += ["## valid (blessing)", ""] + _table(valid_rows, "valid")
    if test_rows is not None:
        lines += ["## test (reported)", ""] + _table(test_rows, "test")
    lines += [f"![Recall@10 per slice]({CHART_FILE})", ""]
    return "\n".join(lines)


def chart(rows: List[Dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["slice"] for r in rows]
    values = [r.get("recall@10") or 0.0 for r in rows]
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    axis.barh(range(len(rows)), values, color=["#1f77b4" if n == "overall" else "#7fa7c9"
                                                for n in names])
    axis.set_yticks(range(len(rows)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("Recall@10 (full ranking)")
    for i, value in enumerate(values):
        axis.text(value, i, f" {value:.3f}", va="center", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    storage.write_bytes(path, buffer.getvalue())


def write_report(evaluation_uri: str, blessed: bool, output_dir: str,
                 test_evaluation_uri: str = "", sampled_negatives: int = 100,
                 sampled_protocol: str = "unseen") -> Dict[str, Any]:
    """Writes report.md, report.json and the chart to `output_dir` (any filesystem).

    report.json: {"blessed", "blessing_split": "valid", "evaluation" (valid), "slices" (valid
    rows), "validation" (failed thresholds), "test_evaluation", "test_slices" (test rows),
    "sampled" (what the sampled columns rank, `sampled_description`)}.
    """
    sampled = sampled_description(sampled_negatives, sampled_protocol)
    rows = slice_table(evaluation_uri)
    failures = validation_failures(evaluation_uri)
    test_rows = slice_table(test_evaluation_uri) if test_evaluation_uri else None
    storage.write_text(storage.join(output_dir, REPORT_FILE),
                       markdown(rows, blessed, evaluation_uri, failures, test_rows,
                                test_evaluation_uri, sampled))
    chart(test_rows if test_rows is not None else rows, storage.join(output_dir, CHART_FILE))
    report = {"blessed": blessed, "blessing_split": "valid", "evaluation": evaluation_uri,
              "slices": rows, "validation": failures,
              "test_evaluation": test_evaluation_uri or None, "test_slices": test_rows,
              "sampled": sampled}
    storage.write_json(storage.join(output_dir, JSON_FILE), report)
    return report


@tfx.dsl.components.component
def EvaluationReportGen(  # noqa: N802
        evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
        blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
        report: tfx.dsl.components.OutputArtifact[EvaluationReport],
        test_evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation]
        = None,
        code_fingerprint: tfx.dsl.components.Parameter[str] = "",
        sampled_negatives: tfx.dsl.components.Parameter[int] = 100,
        sampled_protocol: tfx.dsl.components.Parameter[str] = "unseen",
) -> None:
    """Writes the report of the validation Evaluator (whose blessing it reports) and of the
    test Evaluator beside it.

    Args:
      sampled_negatives, sampled_protocol: the trained model's sampled protocol, which its
        `serve_tf_examples` signature (what TFMA reads) draws; the report states it.
      code_fingerprint: the version and source hash of the tf-ccfrec code this component runs
        (`tfx_pipeline.fingerprint`); part of TFX's cache key, otherwise unused.
    """
    blessed = bool(blessing.get_int_custom_property("blessed"))
    write_report(evaluation.uri, blessed, report.uri,
                 test_evaluation.uri if test_evaluation is not None else "",
                 sampled_negatives, sampled_protocol)
    report.set_int_custom_property("blessed", int(blessed))
