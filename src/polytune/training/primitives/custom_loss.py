"""An uploaded custom loss (domain/custom_loss.py), rebuilt as a torch.fx graph from polytune's own
callables: each allowed name maps to the one function of that name, so the graph runs nothing the
server did not choose. It runs once per datum, as the SDK runs it on the client: (logprobs, *the
inputs it reads) -> (scalar loss, {metric name: scalar})."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx

from polytune.domain.custom_loss import ATTRIBUTES, FUNCTIONS, CustomLoss


def _callable(name: str) -> Callable:
    module, _, attr = name.rpartition(".")
    roots = {"operator": operator, "math": math, "torch": torch, "torch.nn.functional": torch.nn.functional}
    return getattr(roots[module], attr)


def _mul(a: Any, b: Any) -> Any:
    """operator.mul, but never a sequence repeated (`shape * 10**9` would take the memory)."""
    if not (isinstance(a, torch.Tensor | int | float) and isinstance(b, torch.Tensor | int | float)):
        raise ValueError("only numbers and tensors multiply in a custom loss")
    return operator.mul(a, b)


def _pow(a: Any, b: Any) -> Any:
    """operator.pow, but no exact integer power large enough to take the worker's time."""
    if isinstance(a, int) and isinstance(b, int) and abs(b) > 64:
        raise ValueError("integer powers above 64 are not computed in a custom loss")
    return operator.pow(a, b)


_FUNCTIONS = {name: _callable(name) for name in FUNCTIONS} | {"operator.mul": _mul, "operator.pow": _pow}


def build(loss: CustomLoss, device: torch.device) -> torch.fx.GraphModule:
    graph = torch.fx.Graph()
    env: dict[str, torch.fx.Node] = {}

    def arg(value: Any) -> Any:
        if isinstance(value, list):
            return [arg(v) for v in value]
        if not isinstance(value, dict):
            return value
        ((kind, inner),) = value.items()
        decoded: dict[str, Callable[[Any], Any]] = {
            "ref": lambda v: env[v],
            "tuple": lambda v: tuple(arg(x) for x in v),
            "dict": lambda v: {k: arg(x) for k, x in v.items()},
            "slice": lambda v: slice(*(arg(x) for x in v)),
            "ellipsis": lambda v: ...,
            "float": float,
            "dtype": lambda v: getattr(torch, v),
            "device": lambda v: device,  # the client traced on its CPU; the loss runs by the model
            "layout": lambda v: getattr(torch, v),
            "memory_format": lambda v: getattr(torch, v),
        }
        return decoded[kind](inner)

    for node in loss.nodes:
        op, name, target = node["op"], node["name"], node["target"]
        args = tuple(arg(a) for a in node.get("args", []))
        kwargs = {k: arg(v) for k, v in node.get("kwargs", {}).items()}
        if op == "placeholder":
            env[name] = graph.placeholder(name)
        elif op == "call_function" and target == "getattr":
            if args[1] not in ATTRIBUTES:  # check_graph refused it already when the loss was created
                raise ValueError(f"attribute {args[1]!r} is not allowed")
            env[name] = graph.call_function(getattr, args, kwargs)
        elif op == "call_function":
            env[name] = graph.call_function(_FUNCTIONS[target], args, kwargs)
        elif op == "call_method":
            env[name] = graph.call_method(target, args, kwargs)
        else:
            graph.output(args[0])
    return torch.fx.GraphModule(torch.nn.Module(), graph)


def run(
    module: torch.fx.GraphModule, loss: CustomLoss, logprobs: torch.Tensor, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """One datum's loss and metrics; rank-0 inputs arrive as one value and are passed as scalars."""
    ranks = dict(loss.inputs)
    values = [inputs[n].reshape(()) if ranks[n] == 0 else inputs[n] for n in loss.input_names]
    value, metrics = module(logprobs, *values)
    return torch.as_tensor(value).reshape(()), {k: float(torch.as_tensor(v).detach()) for k, v in dict(metrics).items()}
