"""The command line (`costsim`): app.py lists the commands and runs them; one module per command group."""

from costsim.cli.app import app, main

__all__ = ["app", "main"]
