"""Where a job's workers go on a Ray cluster, from its resources and the cluster's nodes
(executors/ray_placement.py); the live cluster is in test_ray.py."""

from __future__ import annotations

import pytest

from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import Resources
from polytune.executors.ray_placement import Node, capacity, nodes_from_ray, plan

CPU_NODE = Node({"CPU": 4.0, "memory": 1e9})
A100_NODE = Node({"CPU": 16.0, "GPU": 8.0, "accelerator_type:A100": 1.0})
H100_NODE = Node({"CPU": 16.0, "GPU": 4.0, "accelerator_type:H100": 1.0})
GAUDI_NODE = Node({"CPU": 16.0, "HPU": 8.0, "accelerator_type:Intel-GAUDI": 1.0})


def _refused(resources: Resources, nodes: list[Node], **kw) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as e:
        plan(resources, nodes, **kw)
    return e.value


def test_one_accelerator_on_a_cpu_cluster_is_one_cpu_task_and_says_so():
    p = plan(Resources(accel_type="H100", n_accel=1), [CPU_NODE])
    assert (p.workers, p.per_worker, p.device, p.distributed) == (1, {"CPU": 1.0}, "CPU", False)
    assert p.task_options() == {"num_cpus": 1.0}
    assert "no accelerators" in p.note and "1 CPU worker(s)" in p.note and "1 x H100" in p.note


def test_each_requested_accelerator_is_a_worker():
    p = plan(Resources(n_accel=3), [CPU_NODE], cpus_per_worker=1.0)
    assert p.workers == 3 and p.distributed and p.strategy == "STRICT_PACK"
    two_nodes = plan(Resources(n_accel=2, n_node=2), [CPU_NODE, CPU_NODE])
    assert two_nodes.workers == 4 and two_nodes.strategy == "SPREAD"
    assert plan(Resources(n_accel=1, n_node=2), [CPU_NODE, CPU_NODE]).strategy == "STRICT_SPREAD"


@pytest.mark.parametrize(
    "resources, nodes, param, words",
    [
        (Resources(n_node=8), [CPU_NODE], "resources.n_node", "8 nodes; the Ray cluster has 1"),
        (Resources(n_accel=5), [CPU_NODE], "resources.n_accel", "largest node has 4 CPUs"),
        # 2 CPUs per worker: 3 workers need 6 of a node's 4.
        (Resources(n_accel=3), [CPU_NODE], "resources.n_accel", "room for 2"),
        (Resources(n_accel=2, n_node=2), [CPU_NODE, Node({"CPU": 1.0})], "resources.n_node", "has 1 such node"),
        (Resources(accel_type="H100", n_accel=1), [A100_NODE], "resources.accel_type", "it has: A100"),
        (Resources(accel_type="A100", n_accel=16), [A100_NODE, A100_NODE], "resources.n_accel", "has 8"),
        (
            Resources(accel_type="A100", n_accel=8, n_node=2),
            [A100_NODE, H100_NODE],
            "resources.n_node",
            "has 1 such node",
        ),
    ],
)
def test_what_the_cluster_can_never_hold_is_refused_naming_the_field(resources, nodes, param, words):
    cpus = 2.0 if resources.n_accel == 3 else 1.0
    err = _refused(resources, nodes, cpus_per_worker=cpus)
    assert err.param == param and words in err.message, err.message


def test_accelerators_map_to_ray_accelerator_labels_and_devices():
    p = plan(Resources(accel_type="A100", n_accel=8), [H100_NODE, A100_NODE])
    assert (p.device, p.accelerator_type, p.per_worker) == ("GPU", "A100", {"CPU": 1.0, "GPU": 1.0})
    assert plan(Resources(accel_type="A100"), [A100_NODE]).task_options() == {
        "num_cpus": 1.0,
        "num_gpus": 1.0,
        "accelerator_type": "A100",
    }
    gaudi = plan(Resources(accel_type="GAUDI2", n_accel=2), [GAUDI_NODE])
    assert (gaudi.device, gaudi.accelerator_type, gaudi.per_worker) == ("HPU", "Intel-GAUDI", {"CPU": 1.0, "HPU": 1.0})
    # No type asked: any GPU.
    assert plan(Resources(n_accel=4), [H100_NODE]).accelerator_type is None


def test_capacity_counts_accelerators_or_cpu_workers_of_alive_nodes():
    nodes = nodes_from_ray(
        [
            {"Alive": True, "Resources": A100_NODE.resources},
            {"Alive": False, "Resources": H100_NODE.resources},
            {"Alive": True, "Resources": H100_NODE.resources},
        ]
    )
    assert capacity(nodes) == 12
    assert capacity([CPU_NODE, Node({"CPU": 3.0})], cpus_per_worker=2.0) == 3
    assert _refused(Resources(), []).param == "resources.n_node"


def test_a_job_on_accelerators_gets_a_fresh_ray_worker_process():
    # max_calls=1 for accelerator tasks: a reused process would carry the last job's CUDA state.
    assert plan(Resources(accel_type="A100"), [A100_NODE]).fresh_process
    assert plan(Resources(accel_type="GAUDI2"), [GAUDI_NODE]).fresh_process
    assert not plan(Resources(), [CPU_NODE]).fresh_process
