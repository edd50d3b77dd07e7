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
