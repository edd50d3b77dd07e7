"""Wire <-> polytune for the Tinker API: the protobuf forward_backward body in, protobuf
ForwardBackwardOutput and SampleResponse out (wire_pb2.py, the SDK's own schema), and the
JSON bodies (protocol.py) to the domain's settings."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from polytune.domain.errors import InvalidRequest
from polytune.domain.primitives import (
    AdamSettings,
    Datum,
    ForwardBackwardResult,
    LoraSettings,
    SampledSequence,
    SampleSettings,
)

from . import protocol as w
from . import wire_pb2 as pb

_NUMPY = {pb.DTYPE_FLOAT32: np.float32, pb.DTYPE_INT64: np.int64, pb.DTYPE_INT32: np.int32}


class ForwardBackwardCall:
    def __init__(
        self,
        model_id: str,
        seq_id: int | None,
        loss_fn: str,
        config: dict[str, Any],
        forward_only: bool,
        data: list[Datum],
    ):
        self.model_id, self.seq_id, self.loss_fn, self.config = model_id, seq_id, loss_fn, config
        self.forward_only, self.data = forward_only, data


def decode_forward_backward(body: bytes) -> ForwardBackwardCall:
    msg = pb.ForwardBackwardRequest()
    try:
        msg.ParseFromString(body)
    except DecodeError as e:
        raise InvalidRequest(
            f"The forward_backward body is not a ForwardBackwardRequest protobuf: {e}", param="body"
        ) from None
    if not msg.model_id:
        raise InvalidRequest("model_id is required.", param="model_id")
    config: dict[str, Any] = {k: float(v) for k, v in msg.loss_fn_config.items()}
    for k, v in msg.loss_fn_config_v2.items():
        config[k] = v.text if v.WhichOneof("value") == "text" else float(v.number)
    data = [_datum(i, d) for i, d in enumerate(msg.data)]
    return ForwardBackwardCall(msg.model_id, msg.seq_id or None, msg.loss_fn, config, msg.forward_only, data)


def _datum(i: int, d) -> Datum:
    tokens: list[int] = []
    for chunk in d.model_input:
        if chunk.WhichOneof("chunk") != "encoded_text":
            raise InvalidRequest(
                f"data[{i}].model_input: only encoded_text chunks are supported here (no images or audio).",
                param=f"data[{i}].model_input",
            )
        tokens.extend(np.frombuffer(chunk.encoded_text.tokens, dtype=np.int32).tolist())
    inputs = {name: _tensor(f"data[{i}].loss_fn_inputs.{name}", t) for name, t in d.loss_fn_inputs.items()}
    return Datum(tokens, inputs)


def _tensor(param: str, t) -> np.ndarray:
    dtype = _NUMPY.get(t.dtype)
    if dtype is None:
        raise InvalidRequest(f"{param}: unsupported dtype {t.dtype}.", param=param)
    shape = list(t.shape)
    try:
        if t.WhichOneof("encoding") == "sparse_csr":
            if len(shape) != 2:
                raise InvalidRequest(f"{param}: a sparse tensor must be 2-D.", param=param)
            rows, cols = shape
            values = np.frombuffer(t.sparse_csr.values, dtype=dtype)
            crow = np.frombuffer(t.sparse_csr.crow_indices, dtype=np.int64)
            col = np.frombuffer(t.sparse_csr.col_indices, dtype=np.int64)
            dense = np.zeros((rows, cols), dtype=dtype)
            for r in range(rows):
                dense[r, col[crow[r] : crow[r + 1]]] = values[crow[r] : crow[r + 1]]
            array = dense
        else:
            array = np.frombuffer(t.dense, dtype=dtype).copy()
            if shape:
                array = array.reshape(shape)
    except (ValueError, IndexError) as e:
        raise InvalidRequest(f"{param}: {e}", param=param) from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidRequest(f"{param}: expected one value per token, got shape {list(array.shape)}.", param=param)
    return array.astype(np.int64 if dtype != np.float32 else np.float32)


def encode_forward_backward(result: ForwardBackwardResult) -> bytes:
    out = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord")
    for k, v in result.metrics.items():
        out.metrics[k] = v
    record = out.loss_fn_outputs.add()
    record.num_datums = len(result.outputs)
    for name in result.outputs[0] if result.outputs else {}:
        arrays = [np.ascontiguousarray(o[name], dtype=np.float32) for o in result.outputs]
        field = record.fields[name]
        field.dtype = pb.DTYPE_FLOAT32
        field.data = b"".join(a.tobytes() for a in arrays)
        field.offsets = np.cumsum([0] + [a.nbytes for a in arrays], dtype=np.int64).tobytes()
    return out.SerializeToString()


def encode_samples(sequences: list[SampledSequence]) -> bytes:
    out = pb.SampleResponse()
    for s in sequences:
        seq = out.sequences.add()
        seq.stop_reason = pb.STOP_REASON_STOP if s.stop_reason == "stop" else pb.STOP_REASON_LENGTH
        seq.tokens = np.asarray(s.tokens, dtype=np.int32).tobytes()
        seq.logprobs = np.asarray(s.logprobs, dtype=np.float32).tobytes()
    if sequences and sequences[0].prompt_logprobs is not None:  # NaN: the SDK's None (the first token)
        out.prompt_logprobs = np.asarray(sequences[0].prompt_logprobs, dtype=np.float32).tobytes()
    return out.SerializeToString()


def lora_settings(config: w.LoraConfig | None) -> LoraSettings:
    if config is None:
        return LoraSettings()
    return LoraSettings(
        rank=config.rank,
        seed=config.seed,
        train_mlp=config.train_mlp,
        train_attn=config.train_attn,
        train_unembed=config.train_unembed,
    )


def adam_settings(req: w.OptimStep) -> AdamSettings:
    if req.adam_params is None:
        kind = (req.optimizer_params or {}).get("type", "?")
        raise InvalidRequest(f"Optimizer '{kind}' is not available here; use AdamParams.", param="optimizer_params")
    p = req.adam_params
    return AdamSettings(
        learning_rate=p.learning_rate,
        beta1=p.beta1,
        beta2=p.beta2,
        eps=p.eps,
        weight_decay=p.weight_decay,
        grad_clip_norm=p.grad_clip_norm,
    )


def prompt_tokens(req: w.Sample) -> list[int]:
    tokens: list[int] = []
    for chunk in req.prompt.chunks:
        if not isinstance(chunk, w.EncodedText):
            raise InvalidRequest(
                f"prompt: only encoded_text chunks are supported here, not '{chunk.type}'.", param="prompt.chunks"
            )
        tokens.extend(chunk.tokens)
    return tokens


def sample_settings(req: w.Sample) -> SampleSettings:
    p = req.sampling_params
    unsupported = [
        name
        for name, given in (
            ("top_k", p.top_k not in (-1, 0)),
            ("topk_prompt_logprobs", req.topk_prompt_logprobs > 0),
            ("prompt_logprobs_last_n", req.prompt_logprobs_last_n is not None),
            ("topk_sample_logprobs", req.topk_sample_logprobs > 0),
            ("prompt_alt_tokens_k", req.prompt_alt_tokens_k > 0),
            ("target_prompt_logprobs", req.target_prompt_logprobs is not None),
        )
        if given
    ]
    if unsupported:
        raise InvalidRequest(
            f"{unsupported[0]} is not supported by this server yet (docs/tinker.md).", param=unsupported[0]
        )
    stop = p.stop
    strings: tuple[str, ...] = ()
    tokens: tuple[int, ...] | None = None
    if isinstance(stop, str):
        strings = (stop,)
    elif stop is not None and all(isinstance(s, str) for s in stop):
        strings = tuple(str(s) for s in stop)
        tokens = None if strings else ()
    elif stop is not None:
        tokens = tuple(int(s) for s in stop)
    return SampleSettings(
        max_tokens=p.max_tokens,
        temperature=p.temperature,
        top_p=p.top_p,
        seed=p.seed,
        stop_tokens=tokens,
        stop_strings=strings,
        prompt_logprobs=bool(req.prompt_logprobs),
    )
