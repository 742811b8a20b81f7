"""The steering language's shared vectors (spec/steering_vectors.json), read by this test and by the Swift
Tests/LRTrainTests/SharedVectorsTests.swift: both parsers must agree on every one."""
import json
import os

import pytest

from lrtop import commands, specs

VECTORS = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "spec", "steering_vectors.json")))


# fork / adopt / drop and pace have sections of their own (the verbs only lrtop's trainer runs); the same language.
@pytest.mark.parametrize("case", VECTORS["commands"] + VECTORS.get("branch_commands", []) + VECTORS.get("pace_commands", []),
                         ids=lambda c: repr(c["text"]))
def test_command(case):
    if "parsed" in case:
        assert commands.parse(case["text"]).to_record() == case["parsed"]
    else:
        with pytest.raises(commands.CommandError) as e:
            commands.parse(case["text"])
        assert case["error_contains"] in str(e.value)


@pytest.mark.parametrize("case", VECTORS["schedulers"], ids=lambda c: repr(c["spec"]))
def test_scheduler_spec(case):
    if "canonical" in case:
        assert specs.canonical(case["spec"], case["total_steps"]) == case["canonical"]
    else:
        with pytest.raises(specs.SpecError) as e:
            specs.canonical(case["spec"], case["total_steps"])
        assert case["error_contains"] in str(e.value)


@pytest.mark.parametrize("case", [c for c in VECTORS["schedulers"] if "canonical" in c], ids=lambda c: repr(c["spec"]))
def test_every_valid_spec_builds_a_torch_scheduler_that_steps(case):
    import torch
    from lrtop import schedulers
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = schedulers.build_spec(opt, case["spec"], case["total_steps"])
    for _ in range(5):
        opt.step()
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(1.0)
        else:
            sched.step()
    assert all(g["lr"] >= 0 for g in opt.param_groups)
