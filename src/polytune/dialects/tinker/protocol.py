"""The Tinker API's JSON bodies (tinker 0.38.0's `types/`), as far as polytune reads them.

Unknown fields are ignored, as the SDK's own response models do, so a newer SDK's extra
fields do not break a request; forward_backward's body is protobuf (serving.py decodes it).
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class CreateSession(Wire):
    tags: list[str] = Field(default_factory=list)
    user_metadata: dict[str, Any] | None = None
    sdk_version: str = ""
    display_name: str | None = None


class SessionRef(Wire):
    session_id: str


class LoraConfig(Wire):
    rank: int = Field(ge=1, le=512)
    seed: int | None = None
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True


class OptimizerConfig(Wire):
    type: str = "adamw"


class CreateModel(Wire):
    session_id: str
    model_seq_id: int
    base_model: str
    user_metadata: dict[str, Any] | None = None
    lora_config: LoraConfig | None = None
    optimizer_config: OptimizerConfig = Field(default_factory=OptimizerConfig)


class ModelRef(Wire):
    model_id: str


class AdamParams(Wire):
    learning_rate: float = 1e-4
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    eps: float = Field(1e-12, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip_norm: float = 0.0


class OptimStep(Wire):
    model_id: str
    seq_id: int | None = None
    adam_params: AdamParams | None = None
    optimizer_params: dict[str, Any] | None = None


class SaveWeights(Wire):
    model_id: str
    path: str | None = None
    seq_id: int | None = None
    sampling_session_seq_id: int | None = None
    kind: str = "snapshot"


class SaveWeightsExternal(Wire):
    model_id: str
    path: str
    seq_id: int | None = None
    ttl_seconds: int | None = None  # accepted; checkpoints here are kept until the run's folder goes
    age_encryption_recipients: list[str] | None = None


class LoadWeights(Wire):
    model_id: str | None = None
    seq_id: int | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    base_model: str | None = None
    path: str
    optimizer: bool = False


class CreateSamplingSession(Wire):
    session_id: str
    sampling_session_seq_id: int = 0
    base_model: str | None = None
    model_path: str | None = None


class EncodedText(Wire):
    type: Literal["encoded_text"] = "encoded_text"
    tokens: list[int]


class OtherChunk(Wire):
    type: str


class ModelInput(Wire):
    chunks: list[Union[EncodedText, OtherChunk]]


class SamplingParams(Wire):
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: Union[str, list[str], list[int], None] = None
    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0


class Sample(Wire):
    sampling_session_id: str | None = None
    seq_id: int | None = None
    num_samples: int = 1
    prompt: ModelInput
    sampling_params: SamplingParams
    base_model: str | None = None
    model_path: str | None = None
    prompt_logprobs: bool | None = None
    prompt_logprobs_last_n: int | None = None  # a 400: not supported yet
    topk_prompt_logprobs: int = 0
    topk_sample_logprobs: int = 0
    prompt_alt_tokens_k: int = 0
    target_prompt_logprobs: Any = None


class CustomLossInput(Wire):
    name: str
    rank: int


class CustomLossGraph(Wire):
    format: int = 1
    nodes: list[dict[str, Any]]


class CreateCustomLoss(Wire):
    session_id: str
    custom_loss_seq_id: int = 0
    name: str = Field(max_length=256)
    inputs: list[CustomLossInput] = Field(max_length=17)
    graph: CustomLossGraph


class CheckpointTtl(Wire):
    ttl_seconds: int | None = None


class RetrieveFuture(Wire):
    request_id: str
    allow_metadata_only: bool = False


# -- responses the SDK reads as JSON (it validates them strictly) ---------------------------------
def client_config() -> dict[str, Any]:
    """The SDK's feature flags for this server: plain httpx (no pyqwest), protobuf bodies
    uncompressed, per-request retrieve_future polling, custom losses uploaded and run here."""
    return {
        "pjwt_auth_enabled": False,
        "credential_default_source": "api_key",
        "parallel_fwdbwd_chunks": True,
        "proto_compress_fwdbwd": False,
        "use_pyqwest_transport": False,
        "sample_use_retrieve_futures": False,
        "custom_loss_server_side": True,
        "sample_join_sampling_session": False,
        "sample_enable_stuck_detection": False,
    }


def try_again(request_id: str) -> dict[str, Any]:
    return {"type": "try_again", "request_id": request_id, "queue_state": "active"}


def failed(message: str, user_error: bool) -> dict[str, Any]:
    return {"error": message, "category": "user" if user_error else "server"}
