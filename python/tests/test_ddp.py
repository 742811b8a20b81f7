"""DDP with gloo, 2 processes: every command applies on both ranks at the same step boundary."""
import json
import os
import subprocess
import sys

from conftest import read_log


def run_workers(tmp_path, *mode):
    worker = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, worker, str(tmp_path), *mode], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_commands_apply_on_both_ranks_at_the_same_step(tmp_path):
    run_workers(tmp_path)
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


def test_the_ranks_exchange_every_k_steps_and_commands_apply_at_the_same_step(tmp_path):
    run_workers(tmp_path, "every-k")
    traces = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    k = traces[0]["k"]
    assert k == traces[1]["k"] and 5 <= k <= 50, "about 0.1 s of 3 ms steps"
    recs = read_log(tmp_path / "k" / "run.jsonl")
    steps = [r for r in recs if r["type"] == "step"]
    # The exchange's figures (every rank's step time) go into the step record after it: the exchanges were at
    # steps 1..8, then at the multiples of K only.
    exchanged = [r["step"] - 1 for r in steps if "step_time/rank1" in r]
    after = [s for s in exchanged if s > 8]
    assert exchanged[:7] == list(range(1, 8)) and after and all(s % k == 0 for s in after)
    timed = [r for r in steps if "step_time/rank1" in r and r["step"] > 2]  # step 1's time holds the set-up
    assert timed and all(0.001 < r["step_time/rank1"] < 0.5 and r["step_time/rank0"] > 0.002 for r in timed)
    events = {e["text"]: e for e in recs if e["type"] == "event"}
    # `lr 0.05`, queued at step 20, applied at the next exchange on both ranks (the event says on how many).
    applied = events["lr 0.05"]["step"]
    assert applied % k == 0 and 20 <= applied < 20 + k and events["lr 0.05"]["ranks"] == 2
    for t in traces:
        lr = {int(s): v for s, v in t["lr_used"].items()}
        assert lr[applied] == 0.1 and lr[applied + 1] == 0.05
    paused = events["pause"]["step"]
    assert paused % k == 0 and 70 <= paused < 70 + k
    for t in traces:
        start = {int(s): v for s, v in t["start"].items()}
        assert start[paused + 1] - start[paused] >= 0.25  # the resume was sent 0.5 s after the pause was queued
    # While paused, the status names every rank with its step times from the last exchange (protocol B).
    ranks = [m["ranks"] for m in traces[0]["statuses"] if "ranks" in m]
    assert ranks and [r["rank"] for r in ranks[0]] == [0, 1]
    assert all(set(r) == {"rank", "step_time_mean", "step_time_max", "since_last_step"} for r in ranks[0])
    # Paused, nobody steps: some status then says so (the last one may come after the resume).
    assert any(r["since_last_step"] > 0.05 for m in ranks for r in m)


def test_fsdp2_ranks_are_steered_with_sharded_snapshots(tmp_path):
    """FSDP2 (`fully_shard`) on 2 gloo ranks: `lr`, `ckpt`, `rollback` and `find-lr` apply at the same step on both;
    the snapshots are each rank's own shards (torch.distributed.checkpoint's state dicts), in memory, no file."""
    run_workers(tmp_path, "fsdp2")
    traces = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    for t in traces:
        lr = {int(k): v for k, v in t["lr_used"].items()}
        assert lr[3] == 0.01 and lr[4] == 0.001
        # `rollback` after step 8 put back each rank's own shard as it was after step 5.
        assert t["after_rollback"] == {"step": 5, "shard": t["shard"]["5"]}
        # The sweep's weights were put back on every rank, which go on from the step where it started: asked for
        # after step 10, past the warm-up's 8 steps, it applies at the next exchange (a multiple of K, from the
        # step times, so of the machine's load), the same on both ranks.
        assert t["after_sweep"] == t["before_sweep"] and t["final_step"] >= 10
        assert t["files"] == []
    assert traces[0]["final_step"] == traces[1]["final_step"]
    assert traces[0]["shard"]["5"] != traces[1]["shard"]["5"], "each rank holds its own shard"
    recs = read_log(tmp_path / "fsdp" / "run.jsonl")
    events = {e["text"]: e for e in recs if e["type"] == "event"}
    assert "sharded across the ranks" in events["ckpt"]["message"] and events["ckpt"]["ranks"] == 2
    assert events["rollback"]["message"].startswith("rolled back from step 8 to step 5")
    assert "find-lr" in events
    assert not (tmp_path / "fsdp" / "checkpoints").exists()
