"""A bridged plain loop that a test signals: `python signal_worker.py LOG_DIR MODE`. It prints `ready RUN_DIR` after
20 steps, then trains until 3000 steps (a 5 ms step). MODE: `plain` (Python's own handlers), `ignore-hup` (SIGHUP
ignored, as under nohup), `user-term` (a handler of the user's that ends the loop at SIGTERM), `with` (the loop
inside `with run:`)."""
import os
import signal
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402

log_dir, mode = sys.argv[1], sys.argv[2]
stop = []
if mode == "ignore-hup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
if mode == "user-term":
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
run = lrtop.attach(opt, model=model, name="sig", log_dir=log_dir, announce=False)


def loop():
    for i in range(3000):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss=loss)
        if i == 19:
            print(f"ready {run.run_dir}", flush=True)
        if stop:
            print("stopping at the user's handler", flush=True)
            break
        time.sleep(0.005)


if mode == "with":
    with run:
        loop()
else:
    loop()
    run.close()
print("done", flush=True)
