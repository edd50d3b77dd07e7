"""The grader shapes, one pydantic model per type, as OpenAI defines them (the openai SDK's
`types/graders/`), plus the two SeekrFlow graders OpenAI lacks (`format_check`,
`math_accuracy`), which polytune also accepts anywhere a grader goes.

Unknown fields are refused, so a misspelt `refrence` is a 400 naming it, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

TEXT_METRICS = (
    "cosine",
    "fuzzy_match",
    "bleu",
    "gleu",
    "meteor",
    "rouge_1",
    "rouge_2",
    "rouge_3",
    "rouge_4",
    "rouge_5",
    "rouge_l",
)


class _Grader(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class StringCheckGrader(_Grader):
    type: Literal["string_check"]
    input: str
    reference: str
    operation: Literal["eq", "ne", "like", "ilike"]


class TextSimilarityGrader(_Grader):
    type: Literal["text_similarity"]
    input: str
    reference: str
    evaluation_metric: Literal[TEXT_METRICS]  # type: ignore[valid-type]


class PythonGrader(_Grader):
    type: Literal["python"]
    source: str
    image_tag: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["input_text", "output_text", "input_image", "input_audio"]
    text: str | None = None


class ModelMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant", "system", "developer"]
    content: Union[str, ContentPart, list[Union[str, ContentPart]]]
    type: Literal["message"] | None = None


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_completions_tokens: int | None = Field(None, ge=1)
    reasoning_effort: str | None = None
    seed: int | None = None
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)


class ScoreModelGrader(_Grader):
    type: Literal["score_model"]
    model: str
    input: list[ModelMessage] = Field(min_length=1)
    range: list[float] | None = None
    sampling_params: SamplingParams | None = None


class LabelModelGrader(_Grader):
    type: Literal["label_model"]
    model: str
    input: list[ModelMessage] = Field(min_length=1)
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str] = Field(min_length=1)


class FormatCheckGrader(_Grader):
    """SeekrFlow's: 1 when the text reasons inside <think>…</think> and then answers (TRL's
    think_format_reward), else 0."""

    type: Literal["format_check"]
    input: str = "{{sample.output_text}}"


class MathAccuracyGrader(_Grader):
    """SeekrFlow's: 1 when the text's final answer equals the reference mathematically
    (math-verify, through TRL's accuracy_reward), else 0."""

    type: Literal["math_accuracy"]
    input: str = "{{sample.output_text}}"
    reference: str


Leaf = Annotated[
    Union[
        StringCheckGrader,
        TextSimilarityGrader,
        PythonGrader,
        ScoreModelGrader,
        LabelModelGrader,
        FormatCheckGrader,
        MathAccuracyGrader,
    ],
    Field(discriminator="type"),
]


class MultiGrader(_Grader):
    """`calculate_output` over the sub-graders' rewards. `graders` is one grader (the openai
    SDK's type; the formula names it by its `name`) or, as OpenAI's API also takes, an object
    of named graders (the formula names them by their keys)."""

    type: Literal["multi"]
    calculate_output: str
    graders: Union[Leaf, dict[str, Leaf]]

    def named(self) -> dict[str, Any]:
        return self.graders if isinstance(self.graders, dict) else {self.graders.name: self.graders}


Grader = Annotated[
    Union[
        StringCheckGrader,
        TextSimilarityGrader,
        PythonGrader,
        ScoreModelGrader,
        LabelModelGrader,
        FormatCheckGrader,
        MathAccuracyGrader,
        MultiGrader,
    ],
    Field(discriminator="type"),
]
GRADER_TYPES = (
    "string_check",
    "text_similarity",
    "python",
    "score_model",
    "label_model",
    "multi",
    "format_check",
    "math_accuracy",
)
