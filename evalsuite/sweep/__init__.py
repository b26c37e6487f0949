"""Recipe sweeps: many merges of the same parents, evaluated adaptively and ranked honestly."""

from evalsuite.sweep.config import Sweep, load_sweep
from evalsuite.sweep.record import SweepRecord
from evalsuite.sweep.runner import SweepFailed, run_sweep

__all__ = ["Sweep", "SweepFailed", "SweepRecord", "load_sweep", "run_sweep"]
