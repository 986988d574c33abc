"""The verdict's arithmetic and the baseline cache, without a server."""

from __future__ import annotations

import json

import pytest

from tests.evaluate.task_sets import write_task_set
from trtllm_oci.errors import ArtifactError
from trtllm_oci.evaluate.baseline import BaselineKey, BaselineStore
from trtllm_oci.evaluate.gate import compare, relative_drop
from trtllm_oci.evaluate.harness import HarnessScores
from trtllm_oci.evaluate.task_set import task_set_digest

HARNESS = "lm-eval 0.4.13; gate protocol 1"


def scores(ppl: float, em: float, harness: str = HARNESS) -> HarnessScores:
    return HarnessScores(harness=harness, scores={"ppl": {"word_perplexity": ppl}, "qa": {"exact_match": em}},
                         higher_is_better={"ppl": {"word_perplexity": False}, "qa": {"exact_match": True}},
                         samples={"ppl": 4, "qa": 8})


def verdict(source: HarnessScores, candidate: HarnessScores, limits: dict[str, float]):
    return compare(source, candidate, limits, "fail", source_label="src", candidate_label="cand",
                   baseline_key="k", baseline_reused=False)


def test_drops_point_toward_worse_whatever_the_direction():
    assert relative_drop(100.0, 110.0, higher_is_better=False) == pytest.approx(0.10)  # perplexity up 10%
    assert relative_drop(100.0, 90.0, higher_is_better=False) == pytest.approx(-0.10)  # better
    assert relative_drop(0.8, 0.6, higher_is_better=True) == pytest.approx(0.25)
    assert relative_drop(0.0, 0.0, higher_is_better=True) == 0.0 and relative_drop(0.0, 0.5, True) == -0.5


def test_a_drop_at_the_limit_passes_and_above_it_fails():
    at = verdict(scores(100.0, 1.0), scores(105.0, 0.9), {"word_perplexity": 0.05, "exact_match": 0.1})
    assert at.passed and at.status == "passed" and at.failures == []
    above = verdict(scores(100.0, 1.0), scores(105.1, 0.5), {"word_perplexity": 0.05, "exact_match": 0.1})
    assert not above.passed and len(above.failures) == 2
    assert above.failures[0].startswith("ppl word_perplexity dropped 5.10% (source 100, quantized 105.1; lower is "
                                        "better), above its limit of 5.00%")
    assert "qa exact_match dropped 50.00%" in above.message() and "limit of 10.00%" in above.message()


def test_metrics_without_a_limit_are_reported_not_gated():
    result = verdict(scores(100.0, 1.0), scores(300.0, 1.0), {"exact_match": 0.1})
    ppl = next(r for r in result.rows if r.metric == "word_perplexity")
    assert result.passed and ppl.limit is None and ppl.passed and ppl.drop == pytest.approx(2.0)


def test_marked_failures_and_the_event_payload():
    result = compare(scores(100.0, 1.0), scores(100.0, 0.0), {"exact_match": 0.1}, "mark", source_label="s",
                     candidate_label="c", baseline_key="k", baseline_reused=True)
    payload = result.event_payload()
    assert result.status == "failed (marked)" and payload["verdict"] == "failed (marked)"
    assert payload["baseline_reused"] is True and payload["failures"] == result.failures
    assert json.loads(json.dumps(payload))["metrics"][1]["passed"] is False


def test_scores_of_different_harness_versions_are_not_compared():
    with pytest.raises(ArtifactError, match="different harness versions"):
        verdict(scores(1.0, 1.0), scores(1.0, 1.0, harness="lm-eval 0.4.14; gate protocol 1"), {"exact_match": 0.1})


def test_a_gated_metric_missing_from_the_scores_is_an_error():
    with pytest.raises(ArtifactError, match=r"\['acc'\] are missing"):
        verdict(scores(1.0, 1.0), scores(1.0, 1.0), {"acc": 0.1})


def key(**over) -> BaselineKey:
    fields = {"source_commit": "a" * 40, "task_set_digest": "sha256:" + "0" * 64, "tasks": ("ppl", "qa"),
              "limit": None, "harness": HARNESS, **over}
    return BaselineKey(**fields)


@pytest.mark.parametrize("change", [{"source_commit": "b" * 40}, {"task_set_digest": "sha256:" + "1" * 64},
                                    {"tasks": ("qa", "ppl")}, {"limit": 5}, {"harness": "lm-eval 0.4.14; gate protocol 1"}])
def test_every_input_of_a_baseline_is_in_its_key(change):
    assert key().digest != key(**change).digest and key().digest == key().digest


def test_baselines_round_trip_and_a_corrupt_one_is_measured_again(tmp_path):
    root = tmp_path / "baselines"
    store = BaselineStore(root)
    assert store.get(key()) is None
    stored = store.put(key(), scores(100.0, 1.0), source="tiny unquantized")
    again = store.get(key())
    assert again is not None and again.scores == stored.scores and again.source == "tiny unquantized"
    assert store.get(key(limit=3)) is None
    path = root / BaselineStore.name(key().digest)
    path.write_text("{not json")
    assert store.get(key()) is None
    assert not path.exists() and list(root.glob("*.bad-*"))
    # An entry whose recorded inputs do not match its file name is not trusted either.
    other = store.put(key(limit=3), scores(1.0, 1.0), source="x")
    path.write_text((root / BaselineStore.name(other.key)).read_text())
    assert store.get(key()) is None


def test_the_task_set_digest_covers_names_and_contents(tmp_path):
    root = write_task_set(tmp_path / "a")
    first = task_set_digest(root)
    assert first == task_set_digest(write_task_set(tmp_path / "b"))  # same files, same digest
    (root / ".cache").mkdir()
    (root / ".cache" / "junk").write_text("x")
    assert task_set_digest(root) == first  # hidden files are not the task set
    (root / "qa.jsonl").write_text((root / "qa.jsonl").read_text().replace('"?"', '"!"'))
    assert task_set_digest(root) != first
