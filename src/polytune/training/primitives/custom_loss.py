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


# What one node of an uploaded loss may produce: a tensor of at most this many elements (a
# per-token loss needs a few times the sequence; 4 M is far beyond it), a number of at most 64
# bits, a tuple or list of at most 64 items. Checked before each call from its inputs' sizes
# (broadcasting, or concatenation), so a loss can't make the server allocate what it chose:
# `cat([x, x])` doubled forty times, an outer product of two long vectors, `2 ** 2 ** ...`.
MAX_ELEMENTS = 1 << 22
MAX_ITEMS = 64
MAX_INT = 1 << 63


class _Guarded(torch.fx.Interpreter):
    def run_node(self, n: torch.fx.Node) -> Any:
        if n.op in ("call_function", "call_method"):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            _check_inputs(n.name, [*args, *kwargs.values()])
        result = super().run_node(n)
        _check_result(n.name, result)
        return result


def _tensors(values: list[Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, list | tuple):
            out.extend(_tensors(list(v)))
    return out


def _check_inputs(name: str, values: list[Any]) -> None:
    tensors = _tensors(values)
    if not tensors:
        return
    total = sum(t.numel() for t in tensors)
    try:
        broadcast = math.prod(torch.broadcast_shapes(*(t.shape for t in tensors)))
    except RuntimeError:  # shapes that don't broadcast (a concatenation): its size is the sum
        broadcast = 0
    if max(total, broadcast) > MAX_ELEMENTS:
        raise ValueError(f"node '{name}' would make a tensor of over {MAX_ELEMENTS} elements")


def _check_result(name: str, value: Any) -> None:
    if isinstance(value, torch.Tensor) and value.numel() > MAX_ELEMENTS:
        raise ValueError(f"node '{name}' made a tensor of over {MAX_ELEMENTS} elements")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError(f"node '{name}' made an integer beyond 64 bits")
    if isinstance(value, list | tuple | dict) and len(value) > MAX_ITEMS:
        raise ValueError(f"node '{name}' made a sequence of over {MAX_ITEMS} items")


def run(
    module: torch.fx.GraphModule, loss: CustomLoss, logprobs: torch.Tensor, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """One datum's loss and metrics; rank-0 inputs arrive as one value and are passed as scalars."""
    ranks = dict(loss.inputs)
    values = [inputs[n].reshape(()) if ranks[n] == 0 else inputs[n] for n in loss.input_names]
    value, metrics = _Guarded(module).run(logprobs, *values)
    return torch.as_tensor(value).reshape(()), {k: float(torch.as_tensor(v).detach()) for k, v in dict(metrics).items()}
