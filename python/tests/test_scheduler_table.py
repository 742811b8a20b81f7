"""The Python spec table agrees with spec/schedulers.json, which the Swift SchedulerFactory generates: the same
names, aliases, keys (in order), defaults, required keys and sequence lengths."""
import json
import os

import pytest

from lrtop import specs

TABLE = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "spec", "schedulers.json")))
SAMPLE = {"integer": "7", "number": "0.5", "integer_list": "3/5", "number_list": "0.001", "bool": "false"}


def test_same_kinds_in_the_same_order():
    assert [s["name"] for s in TABLE["schedulers"]] == specs.NAMES


@pytest.mark.parametrize("entry", TABLE["schedulers"], ids=lambda e: e["name"])
def test_kind_matches_the_swift_descriptor(entry):
    kind = specs.kind_named(entry["name"])
    assert list(kind.aliases) == entry["aliases"]
    assert list(kind.keys) == [o["key"] for o in entry["options"]]
    required = [o for o in entry["options"] if o.get("required")]
    spec = entry["name"] + (":" + ",".join(f"{o['key']}={SAMPLE[o['type']]}" for o in required) if required else "")
    seg = specs.resolve(spec, 100).segments[0]
    for o in entry["options"]:
        if o.get("default") is None or o["key"] not in seg.params:
            continue
        got = seg.params[o["key"]]
        assert (got == [o["default"]] if o["type"] == "number_list" else got == o["default"]), o["key"]
    if entry["length_key"]:
        assert seg.length == seg.params[entry["length_key"]]
    else:
        assert seg.length is None
    assert specs.Schedule([seg]).needs_metric == entry["needs_metric"]
    for o in required:
        options = [x for x in required if x is not o]
        broken = entry["name"] + (":" + ",".join(f"{x['key']}={SAMPLE[x['type']]}" for x in options) if options else "")
        with pytest.raises(specs.SpecError, match=f"missing parameter '{o['key']}'"):
            specs.resolve(broken, 100)
