"""text_similarity: a similarity in [0, 1] between the rendered input and reference, each
metric from the library made for it:

- fuzzy_match: rapidfuzz `fuzz.ratio` / 100 (normalised Indel similarity);
- bleu: sacrebleu `sentence_bleu` / 100 (its default 13a tokenizer, exponential smoothing);
- gleu: nltk `sentence_gleu` on whitespace tokens;
- meteor: nltk `meteor_score` on whitespace tokens, exact and stem matches (the synonym stage
  needs WordNet data, which polytune doesn't download; it is used when nltk finds it);
- rouge_1 … rouge_5, rouge_l: rouge-score's F-measure, with its Porter stemmer;
- cosine: cosine similarity of the two texts' embeddings, from the OpenAI-compatible
  `/embeddings` endpoint configured as POLYTUNE_GRADER_EMBEDDINGS_MODEL (else a 400 at validation).
"""

from __future__ import annotations

import functools
import math

from .models import TextSimilarityGrader
from .result import GradeFailed


def similarity(grader: TextSimilarityGrader, text: str, reference: str, embed=None) -> float:
    metric = grader.evaluation_metric
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz

        return fuzz.ratio(text, reference) / 100.0
    if metric == "bleu":
        import sacrebleu

        return sacrebleu.sentence_bleu(text, [reference]).score / 100.0
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return float(sentence_gleu([reference.split()], text.split()))
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score

        return float(meteor_score([reference.split()], text.split(), wordnet=_wordnet()))
    if metric.startswith("rouge_"):
        return _rouge("rougeL" if metric == "rouge_l" else metric.replace("_", ""), reference, text)
    if metric == "cosine":
        if embed is None:
            raise GradeFailed("other_error", "cosine similarity needs an embedding model; none is configured")
        a, b = embed([text, reference])
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        return sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0
    raise GradeFailed("other_error", f"unknown evaluation_metric {metric!r}")


def _rouge(kind: str, reference: str, text: str) -> float:
    return float(_scorer(kind).score(reference, text)[kind].fmeasure)


@functools.cache
def _scorer(kind: str):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


class _NoSynonyms:
    """A WordNet stand-in with no synonyms: meteor's exact and stem stages only."""

    def synsets(self, *args, **kwargs) -> list:
        return []


@functools.lru_cache(maxsize=1)
def _wordnet():
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet
    except LookupError:
        return _NoSynonyms()
