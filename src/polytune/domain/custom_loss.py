"""Custom losses uploaded by the Tinker SDK (`ServiceClient.create_custom_loss`): a loss traced
with torch.fx on the client, sent as plain data (node by node), checked here against polytune's
own list of allowed operations, and rebuilt by the worker (training/primitives/custom_loss.py).

Nothing the client sends is executed as code: a node names a function or method, and only names
on these lists are rebuilt, each mapped to the one callable of that name. They are pure tensor
arithmetic: nothing reads or writes files, allocates tensors of a size the client picks, moves
data off the device, or changes a tensor in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from polytune.domain.errors import InvalidRequest

# Qualified names (as the SDK writes them) of the functions a loss may call.
FUNCTIONS: frozenset[str] = frozenset(
    [f"operator.{n}" for n in "add sub mul truediv floordiv mod pow neg pos abs getitem lt le gt ge eq ne".split()]
    + [f"math.{n}" for n in "exp log log1p expm1 sqrt tanh".split()]
    + [
        f"torch.{n}"
        for n in (
            "abs add clamp clamp_min clamp_max cumsum div exp expm1 log log1p log_softmax logsumexp maximum mean "
            "minimum mul neg pow relu sigmoid sign softmax sqrt square stack cat sub sum tanh where "
            "ones_like zeros_like full_like"
        ).split()
    ]
    + [f"torch.nn.functional.{n}" for n in "logsigmoid softplus relu log_softmax softmax".split()]
)
# Tensor methods a loss may call (none in place, none that leaves the tensor world).
METHODS: frozenset[str] = frozenset(
    (
        "abs clamp clamp_min clamp_max cumsum detach div exp expm1 float log log1p log_softmax logsumexp "
        "masked_fill max mean min mul neg pow relu reshape sigmoid size softmax sqrt square squeeze sub sum tanh "
        "unsqueeze view add rsub where"
    ).split()
)
# `x.shape` traces as getattr(x, "shape"): the one builtin allowed, for these attributes only.
ATTRIBUTES = frozenset({"shape", "ndim", "dtype"})
OPS = frozenset({"placeholder", "call_function", "call_method", "output"})
MAX_NODES = 2000
MAX_ITEMS = 64  # items in one argument (a list of tensors to concatenate, a shape)
# The one-key objects an argument may be (the SDK's encoding) besides a node reference.
_WRAPPED = {"tuple", "dict", "slice", "ellipsis", "float", "dtype", "device", "layout", "memory_format"}
_LAYOUTS = {"strided", "contiguous_format", "preserve_format"}
_DTYPES = {"float32", "float64", "int64", "int32", "bool", "bfloat16", "float16"}


@dataclass(frozen=True)
class CustomLoss:
    loss_id: str
    org_id: str
    session_id: str
    name: str
    inputs: tuple[tuple[str, int], ...]  # (name, rank), `logprobs` first
    nodes: tuple[dict[str, Any], ...]  # op, name, target, args, kwargs, as the SDK sent them

    @property
    def input_names(self) -> tuple[str, ...]:
        """The loss_fn_inputs keys the loss reads, in the order it takes them."""
        return tuple(name for name, _ in self.inputs[1:])


def check_graph(inputs: list[tuple[str, int]], nodes: list[dict[str, Any]]) -> None:
    """A 400 naming the node for anything the worker would not rebuild."""
    if not inputs or inputs[0][0] != "logprobs":
        raise InvalidRequest("A custom loss takes logprobs first.", param="inputs")
    for name, rank in inputs:
        if rank not in (0, 1):
            raise InvalidRequest(
                f"Input '{name}' has rank {rank}; this server takes scalars and per-token tensors (0 or 1).",
                param="inputs",
            )
    if not 0 < len(nodes) <= MAX_NODES:
        raise InvalidRequest(f"A custom loss has 1 to {MAX_NODES} nodes.", param="graph.nodes")
    seen: set[str] = set()
    placeholders = 0
    for i, node in enumerate(nodes):
        param = f"graph.nodes[{i}]"
        op, target = node.get("op"), node.get("target")
        if not isinstance(node.get("args", []), list) or not isinstance(node.get("kwargs", {}), dict):
            raise InvalidRequest(f"Node '{node.get('name')}': args must be a list and kwargs an object.", param=param)
        if op not in OPS:
            raise InvalidRequest(f"Node '{node.get('name')}': operation '{op}' is not allowed here.", param=param)
        if op == "placeholder":
            placeholders += 1
        elif op == "call_function" and target == "getattr":
            if len(node.get("args", [])) != 2 or node["args"][1] not in ATTRIBUTES:
                raise InvalidRequest(
                    f"Node '{node.get('name')}' reads an attribute other than {', '.join(sorted(ATTRIBUTES))}.",
                    param=param,
                )
        elif op == "call_function" and target not in FUNCTIONS:
            raise InvalidRequest(f"Node '{node.get('name')}' calls {target}, which is not allowed here.", param=param)
        elif op == "call_method" and target not in METHODS:
            raise InvalidRequest(
                f"Node '{node.get('name')}' calls the method {target}, which is not allowed here.", param=param
            )
        elif op == "output" and i != len(nodes) - 1:
            raise InvalidRequest("The output node must be the last.", param=param)
        for arg in [*node.get("args", []), *node.get("kwargs", {}).values()]:
            _check_arg(arg, seen, param)
        seen.add(str(node.get("name")))
    if placeholders != len(inputs) or nodes[-1].get("op") != "output":
        raise InvalidRequest(
            "The graph's placeholders must be its inputs, and it must end in an output.", param="graph"
        )


def _check_arg(arg: Any, seen: set[str], param: str, depth: int = 0) -> None:
    if depth > 8:
        raise InvalidRequest("An argument nested more than 8 deep.", param=param)
    if arg is None or isinstance(arg, bool | int | float | str):
        if isinstance(arg, float) and not math.isfinite(arg):
            raise InvalidRequest("Non-finite numbers are written as {'float': ...}.", param=param)
        return
    if isinstance(arg, list):
        if len(arg) > MAX_ITEMS:
            raise InvalidRequest(f"An argument of over {MAX_ITEMS} items.", param=param)
        for a in arg:
            _check_arg(a, seen, param, depth + 1)
        return
    if not isinstance(arg, dict) or len(arg) != 1:
        raise InvalidRequest(f"An argument of an unknown form: {str(arg)[:80]}.", param=param)
    ((kind, value),) = arg.items()
    expected: type = {"tuple": list, "slice": list, "dict": dict, "ellipsis": object}.get(kind, str)
    if not isinstance(value, expected):
        raise InvalidRequest(f"A '{kind}' argument of an unknown form: {str(value)[:80]}.", param=param)
    if kind == "ref":
        if value not in seen:
            raise InvalidRequest(f"A reference to '{value}' before it is computed.", param=param)
    elif kind not in _WRAPPED:
        raise InvalidRequest(f"An argument of an unknown kind '{kind}'.", param=param)
    elif isinstance(value, list):  # a tuple or a slice
        _check_arg(value, seen, param, depth + 1)
    elif isinstance(value, dict):
        _check_arg(list(value.values()), seen, param, depth + 1)
    elif kind == "dtype" and value not in _DTYPES:
        raise InvalidRequest(f"dtype '{value}' is not allowed here.", param=param)
    elif kind == "device" and value != "cpu":
        # The loss runs where the model is; the client traced it on its own CPU.
        raise InvalidRequest(f"device '{value}' is not allowed here.", param=param)
    elif kind in ("layout", "memory_format") and value not in _LAYOUTS:
        raise InvalidRequest(f"{kind} '{value}' is not allowed here.", param=param)
    elif kind == "float" and value not in ("inf", "-inf", "nan"):
        raise InvalidRequest(f"float '{value}' is not allowed here.", param=param)
