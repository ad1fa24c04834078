"""Checkpoints inside a job: the whole training state of a cell or a pretraining job, written atomically, so
that a job interrupted by a crash, a pre-empted node or Ctrl-C continues from its last checkpoint and ends
exactly as an uninterrupted run of the same job would (bit for bit on the CPU).

A checkpoint is written at every evaluation and at least every :class:`CheckpointPolicy` interval. Beside it a
small progress note says how far the job got, so a resumed job can say how many steps it trained twice.
The state is saved with ``torch.save`` and read back with ``weights_only=True``: only tensors and plain data.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ganbench.context import CheckpointPolicy
from ganbench.files import writing
from ganbench.store.cache import atomic_torch_save, set_aside

FORMAT = 1  # bump when the state's layout changes: older checkpoints are then discarded, never misread


@dataclass
class Resumed:
    """What a job's resumptions cost it: how often it resumed, from which steps, how many steps were redone."""

    resumes: int = 0
    from_steps: tuple[int, ...] = ()
    steps_redone: int = 0

    def record(self) -> dict[str, Any]:
        return {"resumes": self.resumes, "resumed_from": list(self.from_steps), "steps_redone": self.steps_redone}


class Checkpoints:
    """One job's checkpoint file: ``load`` what an earlier process left, ``save`` when ``due``, ``remove`` at the
    end. ``identity`` (the job's id and the code's revision) must match for a checkpoint to be used."""

    def __init__(self, path: str | os.PathLike, policy: CheckpointPolicy, identity: dict[str, Any],
                 *, progress: bool = True) -> None:  # fmt: skip
        self.path = Path(path)
        self.note_path = self.path.with_name(self.path.name + ".progress")
        self.policy = policy
        self.identity = identity
        self.progress = progress
        self.resumed = Resumed()
        self._last_step = 0
        self._last_time = time.monotonic()
        self._last_note = 0.0

    def load(self) -> dict[str, Any] | None:
        """The state an interrupted run left (None: start from the beginning). A damaged checkpoint, or one of
        another job or code revision, is reported in one line and set aside."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, weights_only=True, map_location="cpu")
        except Exception as exc:  # truncated, or not a checkpoint at all
            return self._discard(f"is damaged ({type(exc).__name__})")
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return self._discard("has an older layout")
        if state.get("identity") != self.identity:
            return self._discard(f"was written for {state.get('identity')}, not {self.identity}")
        step = int(state["step"])
        reached = max(step, self._noted_step())
        previous = state.get("resumed", {})
        self.resumed = Resumed(int(previous.get("resumes", 0)) + 1, (*previous.get("from_steps", ()), step),
                               int(previous.get("steps_redone", 0)) + reached - step)  # fmt: skip
        self._last_step = step
        self._say(f"resuming from the checkpoint at step {step} ({reached - step} steps to redo): {self.path.name}")
        return state

    def due(self, step: int) -> bool:
        """Whether the interval since the last checkpoint has passed (cheap: no device synchronization)."""
        policy = self.policy
        if policy.every_steps and step - self._last_step >= policy.every_steps:
            return True
        return bool(policy.every_seconds) and time.monotonic() - self._last_time >= policy.every_seconds

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (from :func:`training_state`) atomically: the previous checkpoint stays until the new
        one is complete."""
        state = {**state, "format": FORMAT, "identity": self.identity,
                 "resumed": {"resumes": self.resumed.resumes, "from_steps": list(self.resumed.from_steps),
                             "steps_redone": self.resumed.steps_redone}}  # fmt: skip
        atomic_torch_save(self.path, state, "checkpoint")  # a failing write: one line naming it, the old one kept
        self._last_step, self._last_time = int(state["step"]), time.monotonic()

    def note(self, step: int) -> None:
        """Remember how far the job got (at most once a second; never synchronizes, never fsyncs)."""
        now = time.monotonic()
        if now - self._last_note < 1.0:
            return
        self._last_note = now
        tmp = self.note_path.with_name(self.note_path.name + ".tmp")
        try:
            tmp.write_text(str(step))
            os.replace(tmp, self.note_path)
        except OSError:  # a note is a courtesy; a failing disk shows up, named, at the next checkpoint
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def remove(self) -> None:
        """The job completed: its checkpoint goes (unless the policy keeps it), its progress note always."""
        with writing(self.note_path, "progress note"):
            self.note_path.unlink(missing_ok=True)
        if not self.policy.keep:
            with writing(self.path, "checkpoint"):
                self.path.unlink(missing_ok=True)

    def _noted_step(self) -> int:
        try:
            return int(self.note_path.read_text())
        except (OSError, ValueError):
            return 0

    def _discard(self, why: str) -> None:
        """Set the checkpoint aside (never deleted, never over an earlier one) and say so in one line, whatever
        ``progress`` says: a file was moved."""
        aside = set_aside(self.path, ".discarded")
        tqdm.write(f"warning: checkpoint {self.path.name} {why}: kept it as {aside.name} and starting this job from "
                   "the beginning")  # fmt: skip
        return None

    def _say(self, line: str) -> None:
        if self.progress:
            tqdm.write(line)


def rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """Every random stream a training step may draw from: torch's global CPU (and CUDA) generators, the given
    generators, Python's and NumPy's (augmentations and plugins may use any of them)."""
    numpy_state = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "generators": [g.get_state() for g in generators],
        "python": json.dumps(random.getstate()),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
    }


def set_rng_state(state: dict[str, Any], *generators: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def plain(values: Any) -> Any:
    """Evaluation results as plain JSON data (NumPy scalars become floats), exactly as records store them."""
    return json.loads(json.dumps(values, default=float))
