"""Thin command-line layer: one module per command, registered in `main.py`."""
