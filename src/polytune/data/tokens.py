"""Token accounting with the base model's own tokenizer and chat template.

The count of an example is the length of what the trainer feeds the model, tokenized as TRL
does it, so what a job reports is what it trains on:

- chat: the whole conversation rendered by the chat template (with the row's tools);
- prompt/completion: prompt + completion + the end-of-sequence token;
- text: text + the end-of-sequence token;
- preference: prompt + chosen, plus prompt + rejected (both sequences are trained); its
  length is the longer of the two;
- reinforcement: the prompt rendered with the generation prompt (the completions are
  generated, and billed by the recipe that generates them).

An example longer than the job's context length is dropped (the default) or truncated to it,
by the job's `long_examples` policy; either way the job says how many and which lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .chat_render import ShapeRenderer, join
from .convert import iter_trl_rows
from .pretokens import for_tokenizer
from .problems import DatasetError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from .validate import DatasetSummary

LongExamples = Literal["drop", "truncate"]
# Lines listed by number in reports and events; the rest are counted.
MAX_LISTED_LINES = 20
# Rows per tokenizer call: a fast tokenizer encodes a batch on all cores; bounded, so a file's
# rows are never all in memory at once. Small: rows held across many allocations outlive the
# garbage collector's young generations, and once enough have, it runs full collections over
# everything the process imported (torch, transformers): with 1,024 rows a batch, a third of a
# 10 MB file's count went to those (64 rows: none; the backend still gets tens of KB a call).
_BATCH = 64


def load_tokenizer(model_path: Path | str, chat_template: str | None = None, **options: Any) -> PreTrainedTokenizerBase:
    """The tokenizer training uses: the model folder's, with the catalog's template if it sets one.
    `options`: the catalog entry's load_options (revision, trust_remote_code)."""
    from polytune.lazy_imports import from_transformers

    (auto_tokenizer,) = from_transformers("AutoTokenizer")
    tokenizer = auto_tokenizer.from_pretrained(model_path, **options)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


class TokenCounter:
    """Counts the tokens of TRL rows: chat templates rendered once per conversation shape
    (chat_render.py), the tokenizer called on whole batches."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token or ""
        self.renderer = ShapeRenderer(tokenizer)
        # A fast tokenizer's backend counts without the character offsets and attention masks
        # transformers' __call__ builds: the same ids, less work (same counts: tests/data).
        backend = getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        self._encode_fast = getattr(backend, "encode_batch_fast", None)
        # A byte-level BPE backend counts ASCII texts from cached per-pre-token lengths
        # (pretokens.py): the same counts, several times faster than encoding.
        self._pretokens = for_tokenizer(backend) if backend is not None else None

    def sequences(self, row: dict[str, Any]) -> list[tuple[str | int, bool]]:
        """The texts the trainer tokenizes for one row, each with whether special tokens are
        added (plain text: yes, as the tokenizer's __call__ does; rendered chat: no, the
        template already wrote them). A rendered chat may come as its count instead of its text
        (counted from its template's pieces and its contents: pretokens.py)."""
        if "messages" in row:
            return [(self._render(row["messages"], row), False)]
        if "chosen" in row:
            prompt = row.get("prompt")
            if isinstance(row["chosen"], list):
                return [(self._render((prompt or []) + row[side], row), False) for side in ("chosen", "rejected")]
            return [((prompt or "") + row[side], True) for side in ("chosen", "rejected")]
        if "completion" in row:
            return [(row["prompt"] + self._with_eos(row["completion"]), True)]
        if "text" in row:
            return [(self._with_eos(row["text"]), True)]
        if "prompt" in row:
            return [(self._render(row["prompt"], row, generation_prompt=True), False)]
        raise ValueError(f"not a TRL row: {sorted(row)}")

    def _with_eos(self, text: str) -> str:
        return text if text.endswith(self.eos) else text + self.eos

    def _render(
        self, messages: list[dict[str, Any]], row: dict[str, Any], generation_prompt: bool = False
    ) -> str | int:
        """The conversation as the template renders it, or its token count where its contents
        can be counted beside the template's pieces without building the text."""
        pieces = self.renderer.pieces(messages, row, generation_prompt)
        if pieces is None:
            return self.renderer.render_full(messages, row, generation_prompt)
        if self._pretokens is not None:
            n = self._pretokens.count_spliced(pieces, [m["content"] for m in messages])
            if n is not None:
                return n
        return join(pieces, messages)

    def _count(self, texts: list[str], special: bool) -> list[int]:
        if self._pretokens is not None:
            counts = [self._pretokens.count(t, special) if t.isascii() else -1 for t in texts]
            rest = [i for i, n in enumerate(counts) if n < 0]
            if rest:
                for i, n in zip(rest, self._count_encoded([texts[i] for i in rest], special)):
                    counts[i] = n
            return counts
        return self._count_encoded(texts, special)

    def _count_encoded(self, texts: list[str], special: bool) -> list[int]:
        if self._encode_fast is not None:
            return [len(e) for e in self._encode_fast(texts, add_special_tokens=special)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=special)["input_ids"]]

    def lengths(self, rows: list[dict[str, Any]]) -> list[list[int]]:
        """For each row, the token count of each of its sequences."""
        seqs = [self.sequences(r) for r in rows]
        if all(len(s) == 1 and type(s[0][0]) is int for s in seqs):  # the usual batch: chats, counted
            return [[s[0][0]] for s in seqs]  # type: ignore[list-item]
        out: list[list[int]] = [[] for _ in rows]
        for special in (False, True):
            picked = [(i, item) for i, row_seqs in enumerate(seqs) for item, s in row_seqs if s == special]
            texts = [item for _, item in picked if type(item) is str]
            counts = iter(self._count(texts, special) if texts else ())
            for i, item in picked:
                out[i].append(next(counts) if type(item) is str else item)  # type: ignore[arg-type]
        return out


@dataclass
class TokenReport:
    """The tokens of one file, after the long-example policy."""

    n_examples: int = 0  # examples kept for training
    tokens: int = 0  # their tokens (truncated ones counted up to the context length)
    longest: int = 0  # the longest example before the policy
    context_length: int = 0
    long_examples: str = "drop"
    n_dropped: int = 0
    dropped_lines: list[int] = field(default_factory=list)
    n_truncated: int = 0
    truncated_lines: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def policy_message(self, what: str) -> str | None:
        """The event that says what happened to long examples (None when nothing did)."""
        if self.n_dropped:
            return (
                f"Dropped {self.n_dropped} {what} example{_s(self.n_dropped)} longer than the context length of "
                f"{self.context_length} tokens: {_lines(self.dropped_lines, self.n_dropped)}. Set "
                f"hyperparameters.long_examples to 'truncate' to train on their first {self.context_length} "
                "tokens instead, or raise hyperparameters.context_length."
            )
        if self.n_truncated:
            return (
                f"Truncated {self.n_truncated} {what} example{_s(self.n_truncated)} to the context length of "
                f"{self.context_length} tokens: {_lines(self.truncated_lines, self.n_truncated)}."
            )
        return None


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _lines(lines: list[int], total: int) -> str:
    shown = ", ".join(str(n) for n in lines)
    more = f" and {total - len(lines)} more" if total > len(lines) else ""
    return f"line{_s(total)} {shown}{more}"


def measure(
    rows: Iterable[tuple[int, dict[str, Any]]],
    counter: TokenCounter,
    *,
    context_length: int,
    long_examples: LongExamples = "drop",
    keep: list[dict[str, Any]] | None = None,
    param: str = "training_file",
) -> TokenReport:
    """Count the tokens of (line, TRL row) pairs and apply the policy; rows kept for training are
    appended to `keep` when given (the worker's use), otherwise nothing is held (validation's)."""
    report = TokenReport(context_length=context_length, long_examples=long_examples)
    for batch in _batches(rows):
        for (line_no, row), seq_lengths in zip(batch, _lengths(counter, batch, param)):
            one = len(seq_lengths) == 1
            length = seq_lengths[0] if one else max(seq_lengths)
            if length > report.longest:
                report.longest = length
            if length > context_length:
                if long_examples == "drop":
                    report.n_dropped += 1
                    if len(report.dropped_lines) < MAX_LISTED_LINES:
                        report.dropped_lines.append(line_no)
                    continue
                report.n_truncated += 1
                if len(report.truncated_lines) < MAX_LISTED_LINES:
                    report.truncated_lines.append(line_no)
            report.n_examples += 1
            report.tokens += min(length, context_length) if one else sum(min(n, context_length) for n in seq_lengths)
            if keep is not None:
                keep.append(row)
    return report


def _lengths(counter: TokenCounter, batch: list[tuple[int, dict[str, Any]]], param: str) -> list[list[int]]:
    try:
        return counter.lengths([r for _, r in batch])
    except Exception:  # noqa: BLE001 - a template's own error (a role or field it refuses)
        pass
    for line_no, row in batch:  # find the example the template refuses, and say which
        try:
            counter.lengths([row])
        except Exception as e:  # noqa: BLE001
            problem = f"line {line_no}: the model's chat template cannot render this example ({type(e).__name__}: {e})"
            raise DatasetError(f"Invalid {param}: {problem}", param=param, problems=[problem]) from e
    return counter.lengths([r for _, r in batch])


def _batches(rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    batch: list[tuple[int, dict[str, Any]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def measure_file(
    path: Path,
    counter: TokenCounter,
    *,
    method: str | None,
    context_length: int,
    long_examples: LongExamples = "drop",
    param: str = "training_file",
    keep: list[dict[str, Any]] | None = None,
) -> TokenReport:
    """measure() over a file that validate_file accepted, streaming it."""
    return measure(
        iter_trl_rows(path, method, param),
        counter,
        context_length=context_length,
        long_examples=long_examples,
        keep=keep,
        param=param,
    )


def check_and_measure(
    path: Path,
    counter: TokenCounter,
    *,
    method: str,
    context_length: int,
    long_examples: LongExamples = "drop",
    param: str = "training_file",
    item_fields: tuple[str, ...] = (),
    min_examples: int = 1,
) -> tuple[DatasetSummary, TokenReport]:
    """validate_file and measure_file in one read of the file (a job's data check): each row is
    counted as soon as it is checked. The file's problems come first: a row the chat template
    refuses is reported only when the file is otherwise valid."""
    from .formats import SPECS
    from .validate import FileCheck

    check = FileCheck(path, method=method, param=param, item_fields=item_fields)
    try:
        report = measure(
            ((line_no, obj if normal else SPECS[fmt].to_trl(obj)) for line_no, obj, fmt, normal in check.rows()),
            counter,
            context_length=context_length,
            long_examples=long_examples,
            param=param,
        )
    except DatasetError:
        check.drain()  # the rest of the file (nothing left after the first row's own error)
        check.summary(min_examples)  # the file's own problems, when it has any
        raise
    return check.summary(min_examples), report
