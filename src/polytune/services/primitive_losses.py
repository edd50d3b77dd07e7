"""Custom losses uploaded through the Tinker API (`create_custom_loss`): checked when created
(domain/custom_loss.py), kept per organization in the server's memory (like sessions), and
looked up by `forward_backward(loss_fn="custom", loss_fn_config={"loss_id": ...})`."""

from __future__ import annotations

import threading
from typing import Any

from polytune.domain.custom_loss import CustomLoss, check_graph
from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.ids import new_id
from polytune.domain.primitives import Datum


class CustomLosses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._losses: dict[str, CustomLoss] = {}

    def create(
        self, org_id: str, session_id: str, name: str, inputs: list[tuple[str, int]], nodes: list[dict[str, Any]]
    ) -> str:
        check_graph(inputs, nodes)
        loss = CustomLoss(new_id("loss", 16), org_id, session_id, name, tuple(inputs), tuple(nodes))
        with self._lock:
            self._losses[loss.loss_id] = loss
        return loss.loss_id

    def for_call(self, org_id: str, config: dict[str, Any], data: list[Datum]) -> CustomLoss:
        """The loss a "custom" forward_backward names, once every datum holds what it reads."""
        loss_id = config.get("loss_id")
        with self._lock:
            loss = self._losses.get(str(loss_id))
        if loss is None or loss.org_id != org_id:
            raise NotFound(f"No custom loss '{loss_id}'.", param="loss_fn_config.loss_id")
        ranks = dict(loss.inputs)
        for i, d in enumerate(data):
            n, targets = len(d.tokens), d.inputs.get("target_tokens")
            if n == 0 or targets is None or targets.shape != (n,):
                raise InvalidRequest(
                    f"data[{i}] needs target_tokens, one per model_input token.", param=f"data[{i}].loss_fn_inputs"
                )
            for name in loss.input_names:
                param = f"data[{i}].loss_fn_inputs.{name}"
                if name not in d.inputs:
                    raise InvalidRequest(
                        f"The loss '{loss.name}' reads data[{i}].loss_fn_inputs['{name}'].", param=param
                    )
                if ranks[name] == 0 and d.inputs[name].size != 1:
                    raise InvalidRequest(f"'{name}' is a scalar input of '{loss.name}'.", param=param)
        return loss
