"""A publicly written PyTorch example, not ours, steered by lrtop with the one documented line.

The model, its data and its training call are Lightning's demo `pytorch_lightning.demos.transformer`
(site-packages/pytorch_lightning/demos/transformer.py, installed from PyPI with pytorch-lightning; Apache License 2.0,
Copyright The Lightning AI team), which Lightning adapted from pytorch/examples' `word_language_model` (BSD 3-Clause),
trained as Lightning's README shows. Nothing of it is copied here: it is imported. What is ours:

- `callbacks=[LrtopCallback(...)]`, the line docs/bridge.md documents for Lightning;
- `WikiText2(data_dir=..., download=False)`: the demo downloads WikiText-2 by default, which needs the network; it
  reads the text file already in `--data-dir` (its `wikitext-2.txt`) instead, and the module's `prepare_data`,
  which downloads it too, is skipped;
- `max_steps` from `--steps` instead of the README's `fast_dev_run=100`, so that it runs until steered to stop, and
  the CPU and no logger, checkpoint, progress bar or summary, so that its output is lrtop's.

    python python/examples/lightning_transformer.py --data-dir data --name wlm   # then: lrtop attach runs/wlm
"""
from pathlib import Path

from torch.utils.data import DataLoader

try:  # the same package lrtop.lightning uses: a Trainer only accepts its own Callback class
    import lightning.pytorch as L
    from lightning.pytorch.demos.transformer import LightningTransformer, WikiText2
except ImportError:
    import pytorch_lightning as L
    from pytorch_lightning.demos.transformer import LightningTransformer, WikiText2

from example_common import parser
from lrtop.lightning import LrtopCallback


def main() -> None:
    p = parser(__doc__, lr=0.1, batch_size=1)
    p.add_argument("--data-dir", default="data", help="the folder holding wikitext-2.txt")
    args = p.parse_args()
    L.seed_everything(args.seed)

    # Lightning's README, with the local text file.
    dataset = WikiText2(data_dir=Path(args.data_dir), download=False)
    dataloader = DataLoader(dataset)
    model = LightningTransformer(vocab_size=dataset.vocab_size)
    model.prepare_data = lambda: None  # the demo's own download step (it needs `requests` and the network)
    trainer = L.Trainer(max_steps=args.steps, callbacks=[LrtopCallback(name=args.name, log_dir=args.log_dir)],
                        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model=model, train_dataloaders=dataloader)


if __name__ == "__main__":
    main()
