"""An HF Transformers Trainer run steered live from lrtop: the only lrtop line is the callback.

    python python/examples/hf_run.py                  # prints: lrtop: steer this run with: lrtop attach runs/NAME
    lrtop attach                                      # in another terminal

A tiny BERT (built from a config: nothing is downloaded) learns a synthetic parity-of-the-first-token task with
the Trainer's default AdamW and linear decay, on the CPU; `--step-delay` slows it down to watch.
"""
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (BertConfig, BertForSequenceClassification, Trainer, TrainerCallback,  # noqa: E402
                          TrainingArguments)

from example_common import parser  # noqa: E402
from lrtop.hf import LrtopCallback  # noqa: E402

VOCAB = 50


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        ids = torch.randint(0, VOCAB, (8,), generator=g)
        return {"input_ids": ids, "labels": int(ids[0] % 2)}


class Slow(TrainerCallback):
    """Sleeps after each step, so a person (or a test) can watch and steer."""

    def __init__(self, delay: float):
        self.delay = delay

    def on_step_end(self, args, state, control, **kwargs):
        if self.delay:
            time.sleep(self.delay)


def main() -> None:
    p = parser(__doc__, lr=1e-3, batch_size=16)
    p.add_argument("--out", default="hf-out", help="the Trainer's output_dir (default ./hf-out)")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(config)
    training = TrainingArguments(output_dir=args.out, per_device_train_batch_size=args.batch_size,
                                 per_device_eval_batch_size=64, max_steps=args.steps, learning_rate=args.lr,
                                 eval_strategy="steps", eval_steps=args.eval_every, save_strategy="no",
                                 logging_strategy="steps", logging_steps=10, report_to=[], use_cpu=True, disable_tqdm=True,
                                 seed=args.seed, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=training, train_dataset=Tokens(4096, args.seed),
                      eval_dataset=Tokens(256, args.seed + 1),
                      callbacks=[LrtopCallback(name=args.name, log_dir=args.log_dir), Slow(args.step_delay)])
    trainer.train()


if __name__ == "__main__":
    main()
