"""The trajectories of spec/steering_vectors.json: commands at steps -> the LR of each group at each step. The Swift
LRControl (Tests/LRTrainTests/TrajectoryVectorsTests.swift) and a bridged PyTorch run (here) must both reproduce
them. Each starts at its base LRs with a constant schedule; `@K COMMAND` applies once K optimizer steps are taken
(at the boundary after step K); `refused` lists the commands refused; `lrs[k-1]` is the LR each group trained with at step k (warmup included), as the
run log's step records say. `LRTOP_REGENERATE=1` rewrites the expected LRs from this side (then check them)."""
import json
import os

import pytest
import torch

import lrtop
from conftest import read_log

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "spec", "steering_vectors.json")
VECTORS = json.load(open(PATH))


def trajectory(case, log_dir):
    """The LRs each group trained with at each step of `case`, on a bridged PyTorch run."""
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in case["groups"]]
    opt = torch.optim.SGD([{"params": [p], "lr": lr, "name": name}
                           for p, (name, lr) in zip(params, zip(case["groups"], case["base_lrs"]))], lr=1.0)
    run = lrtop.attach(opt, name=case["name"], log_dir=str(log_dir), total_steps=case["total_steps"],
                       announce=False, guard="off")
    due: dict = {}
    for c in case["commands"]:
        due.setdefault(c["at"], []).append(c["text"])
    for step in range(1, case["total_steps"] + 1):
        opt.step()
        for text in due.get(step, []):
            run.command(text)  # applies at this step's boundary, as `@step` does
        run.step(loss=1.0)
    run.close()
    records = read_log(run.log_path)
    refused = [e["text"] for e in records if e["type"] == "event" and e["kind"] == "error"]
    # The commands refused, as the run's error events say (where the bridge departs on purpose: bridge_refused).
    assert refused == case.get("bridge_refused", case.get("refused", [])), f"commands refused: {refused}"
    return [r["lrs"] for r in records if r["type"] == "step"]


@pytest.mark.parametrize("case", VECTORS["trajectories"], ids=lambda c: c["name"])
def test_a_bridged_run_follows_the_trajectory(case, tmp_path):
    got = trajectory(case, tmp_path)
    key = "bridge_lrs" if "bridge_lrs" in case else "lrs"  # where the bridge departs on purpose (bridge_about)
    if os.environ.get("LRTOP_REGENERATE"):
        case[key] = got
        return
    assert len(got) == len(case[key])
    for step, (g, want) in enumerate(zip(got, case[key]), start=1):
        assert g == pytest.approx(want, rel=1e-9, abs=1e-15), f"step {step}"


def teardown_module(module):
    if os.environ.get("LRTOP_REGENERATE"):
        with open(PATH, "w") as f:
            f.write(json.dumps(VECTORS, indent=1) + "\n")
