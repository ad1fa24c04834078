"""The ``ganbench`` command: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

import click

from ganbench.context import RunContext
from ganbench.errors import GanbenchError, one_line
from ganbench.grid.config import Grid
from ganbench.report import cell_view, listings

DEFAULT = Grid()
# What a process stopped by a signal exits with (128 + the signal's number, as a shell reports it): Ctrl-C
# (SIGINT) 130, SIGTERM 143. Both stop ganbench the same way (a KeyboardInterrupt in the main thread), at any
# point, within seconds, leaving what rerunning the same command resumes.
INTERRUPTED_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
_STOPPED_BY: list[int] = []  # the signal that stopped this process, once main()'s SIGTERM handler has run
RESUME_LINE = ("Interrupted: rerun the same command to resume (completed cells are kept, the interrupted one "
               "continues from its last checkpoint).")  # fmt: skip

PLUGINS_DIR = click.option(
    "--plugins-dir", "plugins_dirs", multiple=True, type=click.Path(file_okay=False),
    help="Folder of one-file plugins (*.py); repeatable. Also $GANBENCH_PLUGINS_DIR.",
)  # fmt: skip
DATA_ROOT = click.option(
    "--data-root", "data_roots", multiple=True, type=click.Path(exists=True, file_okay=False),
    help="Folder to look for dataset files in (after $GANBENCH_DATA, before /usr/share/datasets); repeatable.",
)  # fmt: skip
CACHE = click.option(
    "--cache", "cache_dir", type=click.Path(file_okay=False),
    help="Cache root (default $GANBENCH_CACHE or ~/.cache/ganbench).",
)  # fmt: skip


def _context(cache_dir=None, data_roots=(), plugins_dirs=(), device: str = "auto") -> RunContext:
    """The run context of this command: its options, then the environment (read here, once)."""
    return RunContext.from_environment(
        cache_dir=cache_dir, data_roots=data_roots, plugins_dirs=plugins_dirs, device=device
    )


class ErrorHandlingGroup(click.Group):
    """How errors reach the user: one line on stderr, a traceback only with --debug.

    Bad input (GanbenchError, and click's own usage errors: an unknown option, a bad value) exits with code 2;
    any other exception is a bug in ganbench or a plugin: one ``internal error`` line, exit code 1. Ctrl-C and
    SIGTERM (a KeyboardInterrupt) print one ``Interrupted`` line and exit 130 or 143 (:data:`INTERRUPTED_EXIT`).
    Asking for help (a group given no command) and SystemExit pass through as click handles them.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except GanbenchError as exc:
            self._traceback(ctx)
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            sys.exit(2)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"Error: {' '.join(exc.format_message().split())} (see '{command} --help')", err=True)
            sys.exit(2)
        except KeyboardInterrupt:  # a command may say what rerunning it does (run matrix: resumes)
            click.echo((ctx.obj or {}).get("interrupted", "Interrupted."), err=True)
            sys.exit(interrupted_exit_code())
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: --help and --version exit through these, Ctrl-C at a prompt aborts
        except Exception as exc:
            self._traceback(ctx)
            what = one_line(f"{type(exc).__name__}: {exc}", limit=300)
            click.echo(
                f"Error: internal error: {what} (rerun with --debug for the traceback, and please report it)", err=True
            )
            sys.exit(1)

    @staticmethod
    def _traceback(ctx: click.Context) -> None:
        if ctx.obj and ctx.obj.get("debug"):
            traceback.print_exc()


@click.group(cls=ErrorHandlingGroup)
@click.version_option(package_name="ganbench")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ganbench: transfer learning in GANs, benchmarked on equal terms.

    \b
    ganbench run matrix            run the default grid (embedded data, no download)
    ganbench plugins               list architectures, strategies, datasets, metrics
    ganbench datasets              where each dataset's data is; `datasets prepare` caches ahead
    ganbench fid DIR_A DIR_B       FID/KID between two image folders
    ganbench score GEN REF         every metric between folders (--shots DIR: memorization)
    ganbench leaderboard RUN_DIR   seed-averaged, ranked CSV / Markdown / HTML report of runs
    ganbench show RUN_DIR CELL     one cell: timing, memory, metrics; its loss and FID curves as a PNG
    ganbench new strategy NAME     write a one-file strategy plugin and its test
    """
    ctx.obj = {"debug": debug}


@cli.group()
def run() -> None:
    """Run experiments."""


def grid_options(command):
    """One option per field of :class:`Grid` that has one (``setting(option=True)``), made from the field: its
    name (``--finetune-steps``), type, choices and help, with the default ``Grid()`` holds."""
    import typing
    from dataclasses import fields

    types = typing.get_type_hints(Grid)
    for f in reversed([f for f in fields(Grid) if f.metadata.get("option", True)]):
        flag = "--" + f.name.replace("_", "-")
        kind = types[f.name]
        help_text = f"{f.metadata['help']} {option_default(f.name, f.metadata)}"
        if kind is bool:
            option = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)
        elif typing.get_origin(kind) is list:
            option = click.option(flag, f.name, default=None, metavar="LIST", help=help_text)
        elif f.metadata.get("choices"):
            option = click.option(flag, f.name, type=click.Choice(f.metadata["choices"]), help=help_text)
        else:
            option = click.option(flag, f.name, type=kind, help=help_text)
        command = option(command)
    return command


def option_default(name: str, metadata) -> str:
    """``(default X)`` for a grid field's help, X as it is typed on the command line, and when another default
    applies, which."""
    value = getattr(DEFAULT, name)
    if metadata.get("shown"):
        shown = metadata["shown"]
    elif isinstance(value, bool):
        shown = "on" if value else "off"
    elif isinstance(value, list):
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    note = f"; {metadata['default_note']}" if metadata.get("default_note") else ""
    return f"(default {shown}{note})"


@run.command("matrix")
@click.option(
    "--config", type=click.Path(dir_okay=False), help="TOML file describing the grid (CLI options override it)."
)
@grid_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--out",
    default="results/runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where run directories go (not inside another run directory or the cache).",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False),
    help="Cache root (default $GANBENCH_CACHE or ~/.cache/ganbench).",
)
@PLUGINS_DIR
@DATA_ROOT
@click.option(
    "--checkpoint-every", metavar="N|TIME", default=None,
    help="Checkpoint each cell (and pretraining) every N steps or TIME (30s, 10m, 2h), besides every evaluation; "
    "0: at evaluations only (default 10m). An interrupted cell resumes from its last checkpoint.",
)  # fmt: skip
@click.option("--keep-checkpoints", is_flag=True, help="Keep cells' checkpoints after they complete.")
@click.option(
    "--wait", is_flag=True,
    help="If another process is running this grid, wait for it instead of refusing (as long as it runs; the "
    "waiting line names it and since when; Ctrl-C or SIGTERM stop waiting).",
)  # fmt: skip
@click.option(
    "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
    help="local: one cell at a time in this process. ray: pretraining jobs and cells as tasks on a Ray cluster.",
)  # fmt: skip
@click.option(
    "--ray-address", metavar="ADDR",
    help="Ray cluster to join: 'auto' (the one started here with 'ray start --head') or HOST:PORT. "
    "Default: the cluster 'ray start' runs on this machine, else one started for this run.",
)  # fmt: skip
@click.option(
    "--cpus-per-cell",
    type=int,
    help="With --executor ray: CPUs reserved per task, the threads a CPU cell uses (default 1).",
)
@click.option(
    "--gpus-per-cell", type=float,
    help="With --executor ray: GPUs reserved per task; fractions pack cells onto a GPU (0.25: four). "
    "Default 1 when this machine has a GPU and --device is auto or cuda, else 0.",
)  # fmt: skip
@click.option(
    "--max-concurrent", type=int, help="With --executor ray: at most N tasks at once (default: as resources allow)."
)
@click.option(
    "--ray-timeout", type=float, metavar="SECONDS",
    help="With --executor ray: give up joining the cluster after SECONDS (default 60; an address where nothing "
    "listens is refused within 3 s).",
)  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Check everything a run checks before training, print the cells, exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_matrix_cmd(
    config, out, device, cache_dir, plugins_dirs, data_roots, dry_run, quiet, checkpoint_every,
    keep_checkpoints, wait, executor, ray_address, cpus_per_cell, gpus_per_cell, max_concurrent, ray_timeout,
    **options
) -> None:  # fmt: skip
    """Run a grid: architectures x strategies x (source -> target) x shots x seeds.

    With no options, runs the embedded default: dcgan x {scratch, finetune, freeze-d, adapter} on
    mnist5k:classes=0-4 -> mnist5k:classes=5-9, 100 shots, seed 0. Rerunning the same command resumes:
    completed cells are kept, an interrupted cell continues from its last checkpoint. Ctrl-C (exit 130) or
    SIGTERM (exit 143) stop it within seconds at any point, cancelling its Ray tasks, and the same command resumes.
    """
    click.get_current_context().obj["interrupted"] = RESUME_LINE  # however early it is stopped
    from ganbench.execute.driver import run_matrix
    from ganbench.execute.plan import check_plan, plan_matrix, reference_work
    from ganbench.grid.config import load_config, make_grid
    from ganbench.plugin.manager import load_registry, refuse_broken_files
    from ganbench.report.plots import draw_run

    grid = make_grid(load_config(config) if config else None, warn=_warning, **options)
    from ganbench.context import CheckpointPolicy

    policy = CheckpointPolicy.parse(checkpoint_every, keep=keep_checkpoints)
    runner = _executor(executor, ray_address, cpus_per_cell, gpus_per_cell, max_concurrent, device, ray_timeout)
    # with GPUs on the Ray workers, this machine (which plans, and computes the reference statistics) may have none
    local_device = "auto" if executor == "ray" and device == "cuda" else device
    context = _context(cache_dir, data_roots, plugins_dirs, local_device).replace(checkpoint=policy)
    runner.context_for(context)  # a bad combination of options fails before anything
    with context.active():  # a --plugins-dir file that does not load is refused, dry run or not
        refuse_broken_files(load_registry(context=context))
    if dry_run:
        from ganbench.store.runs import refuse_output_inside

        plan = plan_matrix(grid, out, context=context)
        refuse_output_inside(out, "--out", cache=context.cache)  # as the run would
        datasets, _ = check_plan(plan)  # the data a run would refuse, refused now
        if ray_address:  # a cluster the run could not reach, or that could not hold a task, refused now
            runner.start(context)
            runner.stop()
        click.echo(listings.plan_table(plan))
        for work in reference_work(plan, datasets):
            click.echo(work.describe())
        return
    started = time.perf_counter()
    summary = run_matrix(grid, out, context=context, progress=not quiet, wait=wait, executor=runner,
                         on_finish=draw_run)  # fmt: skip
    click.echo(listings.results_table(summary.records))
    click.echo(listings.run_footer(summary, time.perf_counter() - started))
    if summary.interrupted:
        click.echo(RESUME_LINE, err=True)
        sys.exit(interrupted_exit_code())
    if summary.failed:
        for r in summary.failed:
            click.echo(f"cell {r['cell_id']} ({r['strategy']}, seed {r['seed']}) {r['status']}: {r['error']}", err=True)
        sys.exit(1)


def _executor(name, address, cpus, gpus, max_concurrent, device, timeout=None):
    """The executor the options ask for; Ray's options without ``--executor ray`` are refused."""
    from ganbench.execute.executors import LocalExecutor

    if name == "local":
        given = [flag for flag, value in (("--ray-address", address), ("--cpus-per-cell", cpus),
                 ("--gpus-per-cell", gpus), ("--max-concurrent", max_concurrent), ("--ray-timeout", timeout))
                 if value is not None]  # fmt: skip
        if given:
            raise GanbenchError(f"{', '.join(given)} only apply with --executor ray; add --executor ray or drop them")
        return LocalExecutor()
    from ganbench.execute.ray_executor import CONNECT_TIMEOUT_S, RayExecutor, import_ray

    import_ray()  # not installed: one line saying how to install it
    if gpus is None:
        import torch

        gpus = 1.0 if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else 0.0
    elif gpus > 0 and device == "cpu":
        raise GanbenchError("--gpus-per-cell asks for GPUs but --device is cpu; drop one of them")
    elif gpus == 0 and device.startswith("cuda"):
        raise GanbenchError(
            f"--device {device} with --executor ray needs --gpus-per-cell (1, or a fraction such as 0.25): Ray "
            "shows a task only the GPUs it reserved for it"
        )
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    return RayExecutor(address, 1 if cpus is None else cpus, gpus, max_concurrent, timeout)


def _warning(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _warn_load_errors(registry) -> None:
    """One warning line on stderr per plugin that failed to load (the listing goes on without it)."""
    for origin, message in registry.load_errors:
        click.echo(f"Warning: {origin} failed to load: {message}; fix it or move it out of the plugins folder "
                   "(the other plugins are listed)", err=True)  # fmt: skip


@cli.command()
@click.argument("kind", required=False, type=click.Choice(sorted(listings.KIND_NAMES)), metavar="[KIND]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@PLUGINS_DIR
def plugins(kind: str | None, as_json: bool, plugins_dirs) -> None:
    """List every plugin: name, kind, origin, version and declared options; KIND (e.g. strategies) lists one
    kind. `ganbench plugins strategies` shows each strategy's method card: its paper and year, the code it was
    checked against, what trains, the losses it adds and its parity test.

    A plugin that fails to load (a file of --plugins-dir with a syntax error, a module that raises on import)
    does not stop the listing: it gets one warning line on stderr, the others are listed, the exit code is 0.
    """
    from ganbench.plugin.manager import load_registry

    registry = load_registry(context=_context(plugins_dirs=plugins_dirs))
    only = listings.KIND_NAMES[kind] if kind else None
    if as_json:
        click.echo(json.dumps(listings.plugins_json(registry, only), indent=2))
    elif only == "strategy":
        click.echo(listings.strategy_cards_text(registry))
    else:
        click.echo(listings.plugins_text(registry, only))
    _warn_load_errors(registry)


@cli.group()
def new() -> None:
    """Write a new plugin from a template."""


@new.command("strategy")
@click.argument("name")
@click.option(
    "--dir", "folder", default=".", show_default=True, type=click.Path(file_okay=False),
    help="Where to write it (not inside a run directory or the cache).",
)  # fmt: skip
def new_strategy_cmd(name: str, folder: str) -> None:
    """Write a commented one-file strategy plugin NAME and a test for it."""
    from ganbench.plugin.scaffold import new_strategy
    from ganbench.store.runs import refuse_output_inside

    refuse_output_inside(folder, "--dir", cache=_context().cache)
    for path in new_strategy(name, folder):
        click.echo(f"wrote {path}")
    click.echo(f"run it:   ganbench run matrix --plugins-dir {folder} --strategy {name}")
    click.echo(f"test it:  python -m pytest {folder}")


@cli.command()
@click.argument("path_a", type=click.Path(exists=True, file_okay=False))
@click.argument("path_b", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), help="Images per Inception batch (default: sized to the device)."
)
def fid(path_a: str, path_b: str, as_json: bool, device: str, batch_size: int) -> None:
    """FID and KID between two folders of images (clean-fid "clean" mode, the runner's pipeline)."""
    from ganbench.metrics.folders import compare_folders

    context = _context(device=device)
    with context.active():
        result = compare_folders(path_a, path_b, context.device, batch_size=batch_size, progress=not as_json)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"FID {result['fid']:.4f}   KID {result['kid']:.6f}   ({result['n_a']} vs {result['n_b']} images)")


@cli.command()
@click.argument("generated_dir", type=click.Path(exists=True, file_okay=False), metavar="GEN_DIR")
@click.argument("reference_dir", type=click.Path(exists=True, file_okay=False), metavar="REF_DIR")
@click.option("--shots", "shots_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of the training images (adds the memorization scores).")  # fmt: skip
@click.option("--metrics", default=None, metavar="LIST",
              help="Metrics, e.g. fid,kid,prdc:k=3,memorization (default fid,kid,prdc [+memorization]).")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (values and how they were made).")
@CACHE
@PLUGINS_DIR
def score(generated_dir, reference_dir, shots_dir, metrics, device, as_json, cache_dir, plugins_dirs) -> None:
    """Score a folder of generated images against a folder of real ones with any metrics.

    The images of one folder must share one size. Runs the cells' own evaluation pipeline: the same feature
    passes, caches and metric plugins; `--shots DIR` names the training images memorization compares with.
    """
    from ganbench.execute.score import score_folders
    from ganbench.plugin.options import split_spec_list

    context = _context(cache_dir, (), plugins_dirs, device)
    specs = split_spec_list(metrics) if metrics else None
    result = score_folders(generated_dir, reference_dir, context=context, shots_dir=shots_dir, metrics=specs,
                           progress=not as_json)  # fmt: skip
    click.echo(json.dumps(result, indent=2) if as_json else listings.score_text(result))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...")
@click.option(
    "-o", "--output", type=click.Path(), help="File to write (a folder for --format html); default: print the table."
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "md", "html"]),
    help="csv (default; md when -o ends in .md), md (readable tables), html (a report folder: -o DIR).",
)  # fmt: skip
@click.option("--rank-by", metavar="COLUMN", help="Metric column to rank by, in its declared direction (default: fid).")
@click.option(
    "--allow-mixed", is_flag=True, help="Rank runs evaluated differently: differing settings split rows and ranks."
)
def leaderboard(run_dirs, output, fmt, rank_by, allow_mixed) -> None:
    """Seed-averaged, ranked leaderboard of runs: CSV, Markdown or an HTML report.

    One row per (arch, strategy, augment, source -> target, shots): mean, std and n over seeds of every
    metric column (FID, KID, ...) and the costs, the rank by the mean of --rank-by (FID by default; lower or
    higher is better as its metric declares), and the gain on it over the scratch cells of the same seeds.

    Refuses (exit 2, nothing written) when rows that would sit side by side were evaluated or budgeted
    differently, unless --allow-mixed. Columns: docs/results-schema.md, "Leaderboard CSV".

    A damaged or hand-edited cell record (not JSON, not an object, a missing or ill-typed field) is skipped
    with one warning line on stderr naming it, and the others are tabulated; a run directory whose records are
    all damaged, or a record of a newer schema than this ganbench reads, is refused. Nothing in the run
    directories is written: -o may not point into a run directory (any folder `ganbench run matrix` wrote) or
    the cache; a failing write names the file and leaves an earlier one as it was.
    """
    from ganbench.report.csv import to_csv
    from ganbench.report.leaderboard import leaderboard_frame
    from ganbench.report.markdown import to_markdown
    from ganbench.store.runs import load_runs, refuse_output_inside

    fmt = fmt or ("md" if output and output.endswith(".md") else "csv")
    if fmt == "html" and not output:
        raise GanbenchError("--format html writes a folder: give it with -o DIR")
    if fmt != "html" and output and os.path.isdir(output):
        raise GanbenchError(f"-o {output} is a folder; give a file name (a folder is for --format html)")
    if output:
        refuse_output_inside(output, "-o", cache=_context().cache)
    loaded = load_runs(run_dirs)
    frame = leaderboard_frame(loaded, allow_mixed=allow_mixed, rank_by=rank_by)
    for note in frame.attrs["notes"]:
        click.echo(note, err=True)
    command = " ".join(["ganbench leaderboard", *run_dirs, *(["--format", fmt] if fmt != "csv" else []),
                        *(["--rank-by", rank_by] if rank_by else []),
                        *(["--allow-mixed"] if allow_mixed else [])])  # fmt: skip
    if not output:
        click.echo(to_markdown(frame, command) if fmt == "md" else to_csv(frame), nl=False)
        return
    if fmt == "html":  # a failing write: one line naming the path (ganbench.files.writing)
        from ganbench.report.html import write_html_report

        written = write_html_report(frame, loaded, output, command=f"{command} -o {output}")
    else:
        from ganbench.store.cache import atomic_write_text

        text = to_markdown(frame, f"{command} -o {output}") if fmt == "md" else to_csv(frame)
        atomic_write_text(output, text, "leaderboard")
        written = output
    click.echo(listings.leaderboard_summary(frame))
    click.echo(f"\n{len(frame)} rows from {len(loaded.records)} cells of {len(loaded.runs)} run(s) -> {written}")


@cli.command()
@click.argument("run_dir", type=click.Path(), metavar="RUN_DIR")
@click.argument("cell_id", metavar="CELL_ID")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False),
    help="PNG to write (default RUN_DIR/plots/CELL_ID.png); not elsewhere in a run directory, nor in the cache.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the cell's summary as a JSON object instead.")
def show(run_dir, cell_id, output, as_json) -> None:
    """One cell of a run, to diagnose it: what it is, its status and error, its time split (adapt / train /
    eval and eval's parts), peak memory, resumptions, device and every metric column; draws its loss curves
    beside its FID (or headline metric) curve to RUN_DIR/plots/CELL_ID.png.

    CELL_ID is the full id or any prefix of it that only one cell of the run has. The plot goes only where
    nothing else lives: -o pointing at the run's records, samples or tables (or into any other run directory, or
    the cache) is refused, and nothing is written.
    """
    from pathlib import Path

    from ganbench.report.cell_plots import plot_cell
    from ganbench.store.runs import find_record, refuse_output_inside

    record = find_record(run_dir, cell_id)
    cell = record["cell_id"]
    path = Path(output) if output else Path(run_dir) / "plots" / f"{cell}.png"
    if output:  # show's own folder (RUN_DIR/plots) is the only place in a run directory it writes
        refuse_output_inside(output, "-o", cache=_context().cache, own=[Path(run_dir) / "plots"])
    samples = Path(run_dir) / "samples" / f"{cell}.png"
    drawn = plot_cell(record, path, None if output else "give -o another path for the plot")
    summary = cell_view.cell_summary(record, plot=str(path) if drawn else None,
                                     samples=str(samples) if samples.is_file() else None)  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2, allow_nan=False))
        return
    click.echo(cell_view.cell_text(summary))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def sources(as_json: bool) -> None:
    """Where the pretrained source checkpoints and the few-shot target sets of the literature come from.

    None of them ships with ganbench: download them, then name them with --source checkpoint:path=FILE and
    --target folder:path=DIR (protocols/ffhq-10shot.toml lists the whole protocol).
    """
    from ganbench.grid.sources import HELP, KNOWN_SOURCES

    if as_json:
        click.echo(json.dumps(list(KNOWN_SOURCES), indent=2))
        return
    for entry in KNOWN_SOURCES:
        click.echo(f"{entry['name']}  [{entry['kind']}]\n    {entry['what']}\n    from: {entry['where']}")
    click.echo(f"\nsource syntax: {HELP}")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@DATA_ROOT
@CACHE
@PLUGINS_DIR
@click.pass_context
def datasets(ctx: click.Context, as_json: bool, data_roots, cache_dir, plugins_dirs) -> None:
    """List every dataset: image count, labels, and where its data is (or how to get it).

    \b
    ganbench datasets prepare NAME[:opts]...   fetch, decode and cache datasets ahead of a run
    """
    # also given before a subcommand: `ganbench datasets --data-root D prepare X`
    ctx.ensure_object(dict).update(datasets_cache=cache_dir, datasets_plugins=plugins_dirs, datasets_roots=data_roots)
    if ctx.invoked_subcommand is not None:
        return
    from ganbench.data.listing import dataset_rows
    from ganbench.plugin.manager import load_registry

    context = _context(cache_dir, data_roots, plugins_dirs)
    registry = load_registry(context=context)
    rows = dataset_rows(registry, context)
    click.echo(json.dumps(rows, indent=2) if as_json else listings.dataset_rows_text(rows, list(context.data_roots)))
    _warn_load_errors(registry)


@datasets.command("prepare")
@click.argument("specs", nargs=-1, required=True, metavar="NAME[:key=value,...]...")
@click.option(
    "--resolution", type=click.IntRange(1), default=DEFAULT.resolution, show_default=True, help="Image size in pixels."
)
@click.option("--channels", type=int, default=DEFAULT.channels, show_default=True, help="1 (grey) or 3 (RGB).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@DATA_ROOT
@CACHE
@PLUGINS_DIR
@click.pass_obj
def datasets_prepare_cmd(obj, specs, resolution, channels, as_json, data_roots, cache_dir, plugins_dirs) -> None:
    """Load datasets (downloading them if needed and possible) and cache them at the run's resolution and
    channels, so that runs with the same settings start from the cache. Prints where they went."""
    from ganbench.data.listing import prepare_datasets
    from ganbench.plugin.manager import load_registry

    context = _context(
        cache_dir or obj.get("datasets_cache"),
        (*data_roots, *obj.get("datasets_roots", ())),
        (*obj.get("datasets_plugins", ()), *plugins_dirs),
    )
    registry = load_registry(context=context)
    done = prepare_datasets(specs, registry, resolution, channels, context)
    click.echo(json.dumps(done, indent=2) if as_json else "\n".join(listings.prepared_text(d) for d in done))


def interrupted_exit_code() -> int:
    """130 after Ctrl-C, 143 after SIGTERM (whichever came first)."""
    return INTERRUPTED_EXIT.get(_STOPPED_BY[0] if _STOPPED_BY else signal.SIGINT, 130)


def _stop(signum: int, frame) -> None:
    """SIGTERM stops ganbench as Ctrl-C does: a KeyboardInterrupt in the main thread, wherever it is (a cell's
    training, a lock wait, connecting to Ray: every wait is interruptible), so the run cancels its tasks and
    leaves what the same command resumes."""
    _STOPPED_BY.append(signum)
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> None:
    """The ``ganbench`` command (``args``: its arguments, default ``sys.argv``), SIGTERM handled as Ctrl-C."""
    signal.signal(signal.SIGTERM, _stop)
    cli.main(args, prog_name="ganbench")


if __name__ == "__main__":
    main()
