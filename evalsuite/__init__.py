"""evalsuite: Open LLM Leaderboard v2 reproduction for merged models and their parents."""

from evalsuite.errors import UserError

__version__ = "0.1.0"

__all__ = ["UserError", "__version__"]
