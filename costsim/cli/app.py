"""The `costsim` command line: every command, in the order `costsim --help` lists them, and the entry point
that turns every user error into one line and exit code 2. Each command lives in the module of its group
(listing, estimate, sweeps, serving, evidence, tasks) and is thin: parse, call the Python API, format."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from costsim.cli import estimate, evidence, listing, serving, sweeps, tasks
from costsim.errors import CostsimError

app = typer.Typer(
    help="costsim: what long-context LLM inference costs, per attention family and accelerator.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from costsim import __version__

        sys.stdout.write(f"costsim {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print costsim's version and exit")] = False) -> None:
    """costsim: what long-context LLM inference costs, per attention family and accelerator."""


for command in (listing.models, listing.inspect, estimate.estimate, estimate.plan, tasks.report, sweeps.crossover,
                estimate.disaggregate, sweeps.sweep, serving.serve, serving.frontier, sweeps.compare,
                evidence.validate, evidence.calibrate):
    app.command()(command)
app.command("hardware")(listing.hardware_list)
app.add_typer(tasks.scenario_app, name="scenario")
app.add_typer(evidence.bench_app, name="bench")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user error becomes one line on stderr and exit code 2."""
    try:  # typer >= 0.20 vendors click; older typer uses the click package
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover
        from click import exceptions as click_exc

    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    try:
        app(args=args, prog_name="costsim", standalone_mode=False)
    except CostsimError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except click_exc.UsageError as exc:
        sys.stderr.write("error: " + " ".join(exc.format_message().split()) + "\n")
        return 2
    except click_exc.ClickException as exc:
        sys.stderr.write("error: " + " ".join(exc.format_message().split()) + "\n")
        return 2
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        return 2
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not bad input: still one line (COSTSIM_DEBUG=1 shows the traceback)
        import os

        if os.environ.get("COSTSIM_DEBUG"):
            raise
        sys.stderr.write(f"error: internal error ({type(exc).__name__}: {exc}); please report it with the command\n")
        return 1
    return 0
