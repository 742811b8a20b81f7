"""DDP with gloo, 2 processes: every command applies on both ranks at the same step boundary."""
import json
import os
import subprocess
import sys

from conftest import read_log


def test_commands_apply_on_both_ranks_at_the_same_step(tmp_path):
    worker = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, worker, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    traces = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    for t in traces:
        lr = {int(k): v for k, v in t["lr_used"].items()}
        # `lr 1e-4` queued at step 3 on rank 0: both ranks train with 1e-4 from step 4.
        assert lr[3] == 0.1 and lr[4] == 1e-4 and lr[5] == 1e-4
        # `pause` after step 6 held both ranks until the resume a second later.
        assert t["start"]["7"] - t["start"]["6"] >= 0.9
        # `rollback` after step 8 restored the checkpoint taken after step 5 on both ranks.
        assert t["after_rollback"]["step"] == 5
        assert t["after_rollback"]["weights"] == t["weights"]["5"]
        assert t["final_step"] == 5 + (12 - 8)
    assert traces[0]["after_rollback"] == traces[1]["after_rollback"]
    recs = read_log(tmp_path / "ddp" / "run.jsonl")
    assert recs[0]["world_size"] == 2
    assert not (tmp_path / "ddp" / "rank1").exists()
    texts = [(e["step"], e["text"], e["kind"]) for e in recs if e["type"] == "event"]
    assert (3, "lr 1e-4", "command") in texts and (6, "pause", "command") in texts
    # The rollback event carries the step it returned to, as the Swift trainer logs it.
    assert (6, "resume", "command") in texts and (5, "rollback", "command") in texts
    # Over 1 MiB of commands queued in one step: the job lives, and they apply a bounded share per boundary.
    flood = [s for s, t, k in texts if t.startswith("lr  ") and t.endswith("*1") and k == "command"]
    assert 32 <= len(flood) < 300 and len(set(flood)) >= 2
