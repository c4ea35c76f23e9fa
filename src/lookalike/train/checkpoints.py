"""Checkpoints of a training run: written atomically after every epoch, continued by ``--resume``.

A checkpoint holds the weights, the optimiser's (and learning-rate schedule's) state, the run's
bookkeeping (epoch, history, best weights) and its configuration. A run may be resumed only with
the same configuration, except for a larger number of epochs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lookalike.errors import LookalikeError


def cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``net``'s weights on the CPU (the best epoch's, kept aside)."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def save_checkpoint(path: Path, net, optimiser, state: dict, config: dict, schedule=None) -> None:
    """Write the run's checkpoint to ``path`` atomically (a kill never leaves half a file)."""
    saved = {"net": net.state_dict(), "optimiser": optimiser.state_dict(), "state": state, "config": config}
    if schedule is not None:
        saved["schedule"] = schedule.state_dict()
    tmp = path.with_name(path.name + ".tmp")
    torch.save(saved, tmp)
    os.replace(tmp, path)


def restore_checkpoint(path: Path | None, net, optimiser, config: dict, schedule=None) -> dict:
    """Load the checkpoint at ``path`` into ``net``, ``optimiser`` and ``schedule``; return the run's
    bookkeeping. One-line errors when it is missing, unreadable or written with other settings."""
    if path is None or not path.is_file():
        raise LookalikeError(f"--resume: no checkpoint {path}; start without --resume")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["net"])
        optimiser.load_state_dict(saved["optimiser"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise LookalikeError(f"{path}: cannot resume from this checkpoint ({str(exc).splitlines()[0]}); "
                             "it was written by another configuration: start without --resume") from None
    if _without_epochs(saved["config"]) != _without_epochs(config):
        raise LookalikeError(f"{path}: this checkpoint was written with other settings "
                             f"({saved['config']}); resume with the same ones, or start again")
    return saved["state"]


def _without_epochs(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "epochs"}  # a resumed run may go on for longer
