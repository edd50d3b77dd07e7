"""Uploaded custom losses (domain/custom_loss.py, training/primitives/custom_loss.py): a loss the
SDK traced and encoded is rebuilt from polytune's own callables and computes what the Python
function computes, gradient included; a graph naming anything off the lists is a 400 naming the
node, and is never rebuilt."""

from __future__ import annotations

import pytest
import torch

from polytune.domain.custom_loss import CustomLoss, check_graph
from polytune.domain.errors import InvalidRequest
from polytune.training.primitives import custom_loss


def _upload(fn, ranks):
    """What the SDK sends for `fn` (its own tracing and encoding)."""
    lib = pytest.importorskip("tinker.lib.public_interfaces.custom_loss")
    handle = lib.trace_loss(fn, ranks, "sess-1")
    nodes = [n.model_dump(mode="json") for n in lib.encode_graph(handle).nodes]
    return [(i.name, i.rank) for i in handle.inputs], nodes


def clipped_is(logprobs, sampling_logprobs, advantages, clip):
    ratio = torch.exp(logprobs - sampling_logprobs)
    value = -(torch.clamp(ratio, 0.8, clip) * advantages).sum() / logprobs.shape[0]
    return value, {"custom/ratio:mean": ratio.mean()}


def test_a_traced_loss_runs_as_the_function_does():
    ranks = {"logprobs": 1, "sampling_logprobs": 1, "advantages": 1, "clip": 0}
    inputs, nodes = _upload(clipped_is, ranks)
    check_graph(inputs, nodes)
    loss = CustomLoss("loss-1", "org", "sess-1", "clipped_is", tuple(inputs), tuple(nodes))
    module = custom_loss.build(loss, torch.device("cpu"))
    torch.manual_seed(0)
    lp = torch.randn(7, requires_grad=True)
    given = {"sampling_logprobs": torch.randn(7), "advantages": torch.randn(7), "clip": torch.tensor([1.3])}
    value, metrics = custom_loss.run(module, loss, lp, given)
    value.backward()
    lp2 = lp.detach().clone().requires_grad_(True)
    want, want_metrics = clipped_is(lp2, given["sampling_logprobs"], given["advantages"], 1.3)
    want.backward()
    assert torch.allclose(value, want) and torch.allclose(lp.grad, lp2.grad)
    assert metrics["custom/ratio:mean"] == pytest.approx(want_metrics["custom/ratio:mean"].detach().item())


def _node(op, target, *args):
    return {"op": op, "name": f"n_{target}".replace(".", "_"), "target": target, "args": list(args), "kwargs": {}}


@pytest.mark.parametrize(
    "bad",
    [
        _node("call_function", "builtins.open", "/etc/passwd"),
        _node("call_function", "os.system", "true"),
        _node("call_function", "torch.full", [100000, 100000], 1.0),
        _node("call_function", "torch.save", {"ref": "logprobs"}, "/tmp/x"),
        _node("call_method", "add_", {"ref": "logprobs"}, 1.0),
        _node("call_method", "to", {"ref": "logprobs"}, {"device": "cuda"}),
        _node("call_module", "fc"),
        _node("get_attr", "weight"),
        _node("call_function", "torch.exp", {"ref": "not_yet"}),
        _node("call_function", "torch.ones_like", {"ref": "logprobs"}, {"device": "cuda:1"}),
        _node("call_function", "getattr", {"ref": "logprobs"}, "__class__"),
    ],
)
def test_anything_off_the_lists_is_refused_naming_the_node(bad):
    nodes = [
        _node("placeholder", "logprobs"),
        bad,
        _node("output", "output", {"tuple": [{"ref": "logprobs"}, {"dict": {}}]}),
    ]
    nodes[0]["name"] = "logprobs"
    with pytest.raises(InvalidRequest) as refused:
        check_graph([("logprobs", 1)], nodes)
    assert refused.value.param == "graph.nodes[1]"


def _graph(*middle):
    nodes = [_node("placeholder", "logprobs"), *middle]
    nodes[0]["name"] = "logprobs"
    last = middle[-1]["name"] if middle else "logprobs"
    return [*nodes, _node("output", "output", {"tuple": [{"ref": last}, {"dict": {}}]})]


@pytest.mark.parametrize(
    "arg",
    [
        {"tuple": 5},  # not a list
        {"ref": ["logprobs"]},  # not a name
        {"dtype": ["float32"]},
        {"layout": "load"},  # any other attribute of torch
        {"memory_format": "save"},
        [{"ref": "logprobs"}] * 65,  # more items than any loss needs
        [[[[[[[[[[1]]]]]]]]]],  # nested deeper than any loss needs
    ],
)
def test_arguments_of_odd_forms_are_refused_naming_the_node(arg):
    with pytest.raises(InvalidRequest) as refused:
        check_graph([("logprobs", 1)], _graph(_node("call_function", "torch.add", {"ref": "logprobs"}, arg)))
    assert refused.value.param == "graph.nodes[1]"


def test_a_node_whose_args_are_not_a_list_is_refused_naming_it():
    for bad in ({"args": 5}, {"kwargs": [1]}):
        with pytest.raises(InvalidRequest) as refused:
            check_graph([("logprobs", 1)], _graph({**_node("call_function", "torch.add"), **bad}))
        assert refused.value.param == "graph.nodes[1]"


def _run(nodes, logprobs):
    check_graph([("logprobs", 1)], nodes)
    loss = CustomLoss("loss-1", "org", "sess-1", "hostile", (("logprobs", 1),), tuple(nodes))
    return custom_loss.run(custom_loss.build(loss, torch.device("cpu")), loss, logprobs, {})


def _chain(target, make_args, n):
    """n nodes, each applying `target` to the previous one."""
    out, prev = [], "logprobs"
    for i in range(n):
        node = _node("call_function", target, *make_args(prev))
        node["name"] = f"n{i}"
        out.append(node)
        prev = node["name"]
    return out


def test_a_loss_cannot_make_the_server_allocate_what_it_chooses():
    x = torch.zeros(1000)
    # Doubling by concatenation: stopped at the first node past the limit, before allocating it.
    doubling = _chain("torch.cat", lambda prev: [[{"ref": prev}, {"ref": prev}]], 40)
    with pytest.raises(ValueError, match="elements"):
        _run(_graph(*doubling), x)
    # An outer product of two long vectors by broadcasting: refused from the shapes alone.
    col = _node("call_method", "unsqueeze", {"ref": "logprobs"}, 1)
    col["name"] = "col"
    outer = _node("call_function", "operator.mul", {"ref": "col"}, {"ref": "logprobs"})
    outer["name"] = "outer"
    with pytest.raises(ValueError, match="elements"):
        _run(_graph(col, outer), torch.zeros(100_000))
    # Integers squared again and again: stopped past 64 bits, long before they grow large.
    size = _node("call_function", "getattr", {"ref": "logprobs"}, "shape")
    size["name"] = "size"
    first = _node("call_function", "operator.getitem", {"ref": "size"}, 0)
    first["name"] = "first"
    squares = _chain("operator.mul", lambda prev: [{"ref": prev}, {"ref": prev}], 12)
    squares[0]["args"] = [{"ref": "first"}, {"ref": "first"}]
    with pytest.raises(ValueError, match="64 bits"):
        _run(_graph(size, first, *squares), x)
    # The same losses at a sane size still run.
    total = _node("call_function", "torch.sum", {"ref": "n2"})
    total["name"] = "total"
    value, _ = _run(
        _graph(*_chain("torch.cat", lambda prev: [[{"ref": prev}, {"ref": prev}]], 3), total), torch.ones(4)
    )
    assert value.item() == 32
