"""The epochs of a training run: validation, the best epoch kept, and checkpoints written
atomically after every epoch and continued by ``--resume``.

The fine-tuning loop, the heads over a frozen network and self-supervised training all run
through :func:`run_epochs`; each gives it one epoch of its own training and its validation score.
A checkpoint holds the weights, the optimiser's (and learning-rate schedule's) state, the run's
bookkeeping (epoch, history, best weights) and its configuration. A run may be resumed only with
the same configuration, except for a larger number of epochs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from lookalike.errors import LookalikeError


def run_epochs(net, optimiser, *, epochs: int, config: dict, checkpoint: Path | None, resume: bool,
               train_epoch: Callable[[int], dict], validate: Callable[[], float] | None = None,
               schedule=None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train ``net`` for ``epochs`` and leave it with the weights of its best epoch.

    ``train_epoch(e)`` trains epoch ``e`` (from 0) and returns its row of the history (loss,
    timings); ``schedule`` steps after it. ``validate()``, when given, scores the network (mAP on
    held-out data): epoch 0 is the network as it starts, so that training must beat it, and the
    best-scoring epoch is kept; without it the last epoch is kept. With ``checkpoint`` the run is
    saved after every epoch, and ``resume`` continues it with the same ``config``. ``on_epoch``
    sees each finished row. Returns the run's state: ``epoch``, ``history``, ``best_map``,
    ``best_epoch``.
    """
    state = {"epoch": 0, "history": [], "best": None, "best_map": -1.0}
    if resume:
        state = restore_checkpoint(checkpoint, net, optimiser, config, schedule)
    elif validate is not None:
        score = validate()
        state.update(history=[{"epoch": 0, "val_map": score}], best=cpu_state(net), best_map=score)
    for epoch in range(state["epoch"], epochs):
        row = {"epoch": epoch + 1, **train_epoch(epoch)}
        if schedule is not None:
            schedule.step()
        if validate is not None:
            row["val_map"] = validate()
        state["history"].append(row)
        if on_epoch is not None:
            on_epoch(row)
        if validate is None or row["val_map"] > state["best_map"]:
            state.update(best=cpu_state(net), best_map=row.get("val_map", -1.0))
        state["epoch"] = epoch + 1
        if checkpoint is not None:
            save_checkpoint(checkpoint, net, optimiser, state, config, schedule)
    if state["best"] is not None:
        net.load_state_dict(state["best"])
    state["best_epoch"] = (max(state["history"], key=lambda r: r.get("val_map", -1))["epoch"]
                           if validate is not None else state["epoch"])
    return state


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
