"""The grader engine on fixed samples: every grader type's score is known (metric values are
checked against the library computing them directly), and every bad grader is a 400 naming
its field."""

from __future__ import annotations

import pytest
from nltk.translate.gleu_score import sentence_gleu
from rapidfuzz import fuzz
from rouge_score import rouge_scorer
import sacrebleu

from polytune.domain.errors import InvalidRequest
from polytune.dialects.seekr.rewards import from_reward_components
from polytune.graders import GraderConfig, Grading, parse_grader

HYP = "the quick brown fox jumps over the lazy dog today"
REF = "the quick brown fox jumped over the lazy dog"
grading = Grading(GraderConfig())


def grade(grader: dict, sample: str, item: dict | None = None):
    return grading.grade(parse_grader(grader), sample, item or {})


def check(sample: str, reference: str, operation: str) -> float:
    return grade(
        {
            "type": "string_check",
            "name": "s",
            "input": "{{sample.output_text}}",
            "reference": reference,
            "operation": operation,
        },
        sample,
    ).reward


def test_string_check_operations():
    assert check("Paris", "Paris", "eq") == 1.0 and check("paris", "Paris", "eq") == 0.0
    assert check("Paris", "Rome", "ne") == 1.0 and check("Paris", "Paris", "ne") == 0.0
    assert check("It is Paris.", "Paris", "like") == 1.0 and check("It is paris.", "Paris", "like") == 0.0
    assert check("It is PARIS.", "Paris", "ilike") == 1.0 and check("It is Rome.", "Paris", "ilike") == 0.0


def test_templates_read_item_fields_and_output_json():
    g = {
        "type": "string_check",
        "name": "s",
        "input": "{{sample.output_json.city}}",
        "reference": "{{item.answer.city}}",
        "operation": "eq",
    }
    assert grade(g, '{"city": "Paris"}', {"answer": {"city": "Paris"}}).reward == 1.0
    # Not JSON, or a field the item lacks: reward 0 with the flag and what was missing.
    r = grade(g, "Paris", {"answer": {"city": "Paris"}})
    assert r.reward == 0.0 and r.errors["invalid_variable_error"] and "output_json" in r.errors["other_error_details"]
    r = grade(g, '{"city": "Paris"}', {"question": "?"})
    assert r.errors["invalid_variable_error"] and "answer" in r.errors["other_error_details"]


@pytest.mark.parametrize(
    "metric,expected",
    [
        ("fuzzy_match", lambda: fuzz.ratio(HYP, REF) / 100),
        ("bleu", lambda: sacrebleu.sentence_bleu(HYP, [REF]).score / 100),
        ("gleu", lambda: sentence_gleu([REF.split()], HYP.split())),
        ("rouge_1", lambda: rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True).score(REF, HYP)["rouge1"].fmeasure),
        ("rouge_2", lambda: rouge_scorer.RougeScorer(["rouge2"], use_stemmer=True).score(REF, HYP)["rouge2"].fmeasure),
        ("rouge_5", lambda: rouge_scorer.RougeScorer(["rouge5"], use_stemmer=True).score(REF, HYP)["rouge5"].fmeasure),
        ("rouge_l", lambda: rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(REF, HYP)["rougeL"].fmeasure),
    ],
)
def test_text_similarity_matches_the_library(metric, expected):
    r = grade(
        {
            "type": "text_similarity",
            "name": "t",
            "input": "{{sample.output_text}}",
            "reference": "{{item.ref}}",
            "evaluation_metric": metric,
        },
        HYP,
        {"ref": REF},
    )
    value = expected()
    assert 0.0 < value < 1.0  # a fixed pair that is neither identical nor disjoint
    assert r.reward == pytest.approx(value)


def test_text_similarity_extremes_and_meteor():
    g = {"type": "text_similarity", "name": "t", "input": "{{sample.output_text}}", "reference": REF}
    for metric in ("fuzzy_match", "bleu", "gleu", "rouge_l", "meteor"):
        same = grade({**g, "evaluation_metric": metric}, REF).reward
        other = grade({**g, "evaluation_metric": metric}, "QQQQ").reward
        assert same == pytest.approx(1.0, abs=1e-3) and other == pytest.approx(0.0, abs=1e-3), metric
    # meteor: stems match (jumps/jumped), so it scores between the two extremes.
    assert 0.5 < grade({**g, "evaluation_metric": "meteor"}, HYP).reward < 1.0


def test_multi_formula_over_named_graders():
    graders = {
        "exact": {
            "type": "string_check",
            "name": "exact",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "operation": "eq",
        },
        "fuzzy": {
            "type": "text_similarity",
            "name": "fuzzy",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "evaluation_metric": "fuzzy_match",
        },
    }
    g = {"type": "multi", "name": "m", "graders": graders, "calculate_output": "0.5 * exact + 0.5 * fuzzy ^ 2"}
    r = grade(g, "Pariss", {"answer": "Paris"})
    fz = fuzz.ratio("Pariss", "Paris") / 100
    assert r.sub_rewards == {"exact": 0.0, "fuzzy": pytest.approx(fz)}
    assert r.reward == pytest.approx(0.5 * fz**2)
    # The SDK's form: one grader, named by its name.
    one = {"type": "multi", "name": "m", "graders": graders["exact"], "calculate_output": "max(exact, 0.25)"}
    assert grade(one, "Rome", {"answer": "Paris"}).reward == 0.25
    # A formula that fails at grading time is a flagged 0, not a crash.
    div = {**one, "calculate_output": "1 / exact"}
    r = grade(div, "Rome", {"answer": "Paris"})
    assert r.reward == 0.0 and r.errors["formula_parse_error"]


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('true')",
        "exact.__class__",
        "[exact][0]",
        "unknown + 1",
        "lambda: 1",
        "exact if",
        "'a' * 3",
    ],
)
def test_multi_refuses_anything_but_arithmetic(formula):
    g = {
        "type": "multi",
        "name": "m",
        "calculate_output": formula,
        "graders": {"type": "string_check", "name": "exact", "input": "a", "reference": "a", "operation": "eq"},
    }
    with pytest.raises(InvalidRequest) as e:
        parse_grader(g)
    assert e.value.param == "grader.calculate_output"


@pytest.mark.parametrize(
    "grader,param",
    [
        ({"type": "regex_check", "name": "x"}, "grader.type"),
        ({"name": "x"}, "grader.type"),
        (
            {"type": "string_check", "name": "s", "input": "{{sample.output_text}}", "operation": "eq"},
            "grader.reference",
        ),
        (
            {"type": "string_check", "name": "s", "input": "{{sample.output_text", "reference": "a", "operation": "eq"},
            "grader.input",
        ),
        (
            {"type": "string_check", "name": "s", "input": "{{answer}}", "reference": "a", "operation": "eq"},
            "grader.input",
        ),
        (
            {"type": "string_check", "name": "s", "input": "{{sample.text}}", "reference": "a", "operation": "eq"},
            "grader.input",
        ),
        (
            {"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "contains"},
            "grader.operation",
        ),
        (
            {"type": "string_check", "name": "s", "input": "a", "reference": "a", "operation": "eq", "extra": 1},
            "grader.extra",
        ),
        (
            {"type": "text_similarity", "name": "t", "input": "a", "reference": "b", "evaluation_metric": "cosine"},
            "grader.evaluation_metric",
        ),
        ({"type": "python", "name": "p", "source": "def grade(:"}, "grader.source"),
        ({"type": "python", "name": "p", "source": "x = 1"}, "grader.source"),
        (
            {
                "type": "score_model",
                "name": "s",
                "model": "m",
                "input": [{"role": "user", "content": "{{item}}"}],
                "range": [0, 1],
            },
            "grader.input[0].content",
        ),
        (
            {
                "type": "score_model",
                "name": "s",
                "model": "m",
                "input": [{"role": "user", "content": "x"}],
                "range": [1, 0],
            },
            "grader.range",
        ),
        (
            {
                "type": "label_model",
                "name": "l",
                "model": "m",
                "input": [{"role": "user", "content": "x"}],
                "labels": ["a", "b"],
                "passing_labels": ["c"],
            },
            "grader.passing_labels",
        ),
        (
            {
                "type": "multi",
                "name": "m",
                "calculate_output": "a",
                "graders": {
                    "a": {
                        "type": "string_check",
                        "name": "a",
                        "input": "{{nope.x}}",
                        "reference": "b",
                        "operation": "eq",
                    }
                },
            },
            "grader.graders.a.input",
        ),
    ],
)
def test_bad_graders_name_the_field(grader, param):
    with pytest.raises(InvalidRequest) as e:
        parse_grader(grader)
    assert e.value.param == param, e.value.message


def test_seekr_reward_components_become_a_weighted_multi():
    multi = from_reward_components(
        {
            "format_reward_weight": 0.2,
            "graders": [
                {"type": "math_accuracy", "weight": 0.5},
                {"type": "string_check", "operation": "case_insensitive_contains"},
            ],
        },
        judge_model="polytune-tiny",
    )
    g = parse_grader(multi)
    item = {"reference_answer": "42"}
    good = grading.grade(g, r"<think>6 times 7</think> The answer is $\boxed{42}$", item)
    assert good.sub_rewards == {"format": 1.0, "math_accuracy_0": 1.0, "string_check_1": 1.0}
    assert good.reward == pytest.approx(0.2 + 0.5 + 0.3)  # the unweighted grader gets what is left
    bad = grading.grade(g, r"The answer is $\boxed{41}$", item)
    assert bad.sub_rewards == {"format": 0.0, "math_accuracy_0": 0.0, "string_check_1": 0.0} and bad.reward == 0.0
