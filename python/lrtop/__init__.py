"""lrtop's Python bridge: log a PyTorch run in lrtop's format and steer it live from `lrtop attach`.

    run = lrtop.attach(optimizer, scheduler, model=model)
    for batch in data:
        ...; optimizer.step(); scheduler.step()
        run.step(loss=loss)
        if run.should_stop: break
    run.close()
"""
from ._version import __version__
from .checkpoint_file import CheckpointError
from .commands import Command, CommandError, parse as parse_command
from .run import Run, attach

__all__ = ["attach", "Run", "Command", "CommandError", "CheckpointError", "parse_command", "__version__"]
