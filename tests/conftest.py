"""Shared pytest fixtures (keep small)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The demo's tiny Gemma-2 models (parent_a, parent_b, candidate), built once per session."""
    from evalsuite.fixtures.tiny import build_demo_models

    return build_demo_models(tmp_path_factory.mktemp("tiny_models"))
