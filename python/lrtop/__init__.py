"""lrtop's Python bridge: log a PyTorch run in lrtop's format and steer it live from `lrtop attach`.

    run = lrtop.attach(optimizer, scheduler, model=model)
    for batch in data:
        ...; optimizer.step(); scheduler.step()
        run.step(loss=loss)
        if run.should_stop: break
    run.close()
"""
__version__ = "0.1.0"

from .commands import Command, CommandError, parse as parse_command  # noqa: E402
from .run import Run, attach  # noqa: E402

__all__ = ["attach", "Run", "Command", "CommandError", "parse_command", "__version__"]
