"""Oxen.ai's create-fine-tune request (CreateFineTuneRequest and its training_params) and its
FineTuneResponse, as tables read off ../shared/seeds/oxen-create-fine-tune.md. The document
gives types and two defaults (is_public false, use_lora true); every numeric bound is
polytune's own (domain/bounds.py), walked just inside and just outside. A refusal is a 400 in
Oxen's envelope whose `error.param` (and message) names the field as it was sent."""

from __future__ import annotations

from .support import Field

TEXT = {"base_model": "polytune-tiny", "script_type": "text_generation", "resource": "main/data/qa.csv"}
IMAGE = {"base_model": "polytune-tiny-diffusion", "script_type": "image_generation", "resource": "main/data/images.csv"}
_TP = "training_params"
_SHOWN = "fine_tune.training_params"


def _tp(name: str, **kw) -> Field:
    return Field(f"{_TP}.{name}", echo=kw.pop("echo", f"{_SHOWN}.{name}"), **kw)


OXEN_REQUEST: list[Field] = [
    Field("resource", valid=("main/data/qa.csv",), outside=("main/data/none.csv", "main", 7), required=True, echo=""),
    Field(
        "base_model", valid=("polytune-tiny",), outside=("no-such-model", 7), required=True, echo="fine_tune.base_model"
    ),
    Field("script_type", valid=("text_generation",), outside=("nope", 7), required=True, echo="fine_tune.script_type"),
    Field("is_public", valid=(True, False), outside=("yes", 1), default=False, echo="fine_tune.is_public"),
    Field("oxen_model_path", valid=("models/mine", None), outside=("../up", 7), echo=""),
    Field("typo", outside=(1,)),  # the body is closed; training_params is open (test_oxen.py)
    # text_generation's parameters (the document's list and Oxen's reference page)
    _tp("batch_size", inside=(1, 1024), outside=(0, 1025, "8", 8.0)),
    _tp("gradient_accumulation", inside=(1, 1024), outside=(0, 1025, "2")),
    _tp("grad_accum", inside=(1, 1024), outside=(0, 1025)),
    _tp("learning_rate", inside=(1e-9, 1), outside=(0, 1.5, "0.001")),
    _tp("lora_alpha", inside=(1, 65_536), outside=(0, 65_537)),
    _tp("lora_rank", inside=(1, 1024), outside=(0, 1025)),
    _tp("steps", inside=(1, 1_000_000), outside=(0, 1_000_001)),
    _tp("epochs", inside=(1, 100), outside=(0, 101)),
    _tp("seq_length", inside=(1, 1_048_576), outside=(0, 1_048_577)),
    _tp("use_lora", valid=(True, False), outside=("yes", 1), default=True),
    _tp("question_column", valid=("question",), outside=("", "nope"), default="question", param="training_params"),
    _tp("answer_column", valid=("answer",), outside=("",), default="answer"),
    _tp("logging_steps", valid=(5,), outside=("x",)),
    _tp("enable_thinking", valid=(True, False), outside=("x",)),
    _tp("neftune_noise_alpha", outside=(5,)),  # accepted by Oxen, not supported yet: refused by name
    # image_generation's parameters (the document's list), on an image table
    _tp("image_column", valid=("image",), outside=("",), base=IMAGE, default="image"),
    _tp("caption_column", valid=("caption",), outside=("",), base=IMAGE, default="caption"),
    _tp("samples", inside=(0, 64), outside=(-1, 65), base=IMAGE, default=2),
    _tp("sample_every", inside=(1, 1_000_000), outside=(0, 1_000_001), base=IMAGE, default=200),
    _tp("timestep_type", valid=("linear", "sigmoid", "weighted"), outside=("uniform",), base=IMAGE, default="sigmoid"),
    _tp("steps", inside=(1,), outside=(0,), base=IMAGE, default=2000),
    _tp("gradient_accumulation", inside=(1,), outside=(0, 1025), base=IMAGE, default=1),
    _tp("lora_rank", inside=(1,), outside=(0,), base=IMAGE, default=16),
    _tp("use_lora", valid=(False,), base=IMAGE, default=True),
    # a parameter of the other script is refused, naming it
    _tp("image_column", outside=("image",), echo=""),
    _tp("epochs", outside=(1,), base=IMAGE, echo=""),
]

# FineTuneResponse and its FineTune, as the document lists them.
OXEN_RESPONSE = {
    "status": "string",
    "status_message": "string",
    "fine_tune": "object",
    "fine_tune.id": "string",
    "fine_tune.name": "string",
    "fine_tune.status": "string",
    "fine_tune.base_model": "string",
    "fine_tune.created_at": "string",
    "fine_tune.updated_at": "string",
}
OXEN_STATUSES = ("created", "tokenizing", "enqueued", "running", "completed", "stopped", "errored", "deployed")
