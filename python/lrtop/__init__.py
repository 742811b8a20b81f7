"""lrtop's Python bridge: log a PyTorch run in lrtop's format and steer it live from `lrtop attach`.

    run = lrtop.attach(optimizer, scheduler, model=model)
    for batch in data:
        ...; optimizer.step(); scheduler.step()
        run.step(loss=loss)
        if run.should_stop: break
    run.close()
"""
from importlib import import_module

from ._version import PROTOCOL, __version__

TYPE_CHECKING = False
if TYPE_CHECKING:   # what type checkers see; at run time each loads on first use (below)
    from .checkpoint_file import CheckpointError
    from .commands import Command, CommandError, parse as parse_command
    from .launcher import find_lrtop_bin
    from .run import Run, attach

__all__ = ["attach", "Run", "Command", "CommandError", "CheckpointError", "parse_command", "find_lrtop_bin",
           "__version__", "PROTOCOL"]

# `import lrtop` loads nothing more, so `lrtop` on PATH (the launcher) starts in milliseconds and a viewer's laptop
# needs no torch. The bridge needs torch: it is imported on first use of `attach` or `Run`, with one line saying
# what to install when it is missing.
TORCH_MISSING = ("lrtop.attach needs PyTorch, which this Python environment does not have: install it where the run "
                 "trains (pip install 'lrtop[torch]', or torch itself); the lrtop viewer needs no torch")
_LAZY = {"attach": ("run", "attach"), "Run": ("run", "Run"), "Command": ("commands", "Command"),
         "CommandError": ("commands", "CommandError"), "CheckpointError": ("checkpoint_file", "CheckpointError"),
         "parse_command": ("commands", "parse"),
         "find_lrtop_bin": ("launcher", "find_lrtop_bin")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lrtop' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    try:
        value = getattr(import_module("." + module, __name__), attribute)
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        raise ModuleNotFoundError(TORCH_MISSING, name="torch") from None
    globals()[name] = value
    return value
