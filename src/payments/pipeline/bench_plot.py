"""The latency plot of ``payments bench --write-docs`` (a PNG beside ``PERFORMANCE.md``).

matplotlib is imported inside ``write_latency_plot`` only: it is the ``bench`` extra's, and nothing the
service runs imports this module. It draws on a bare ``Figure`` with the Agg canvas, so no pyplot
state and no display are involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from payments.pipeline.bench_report import BenchReport, Target
from payments.pipeline.bench_stats import CURVE_RANKS, LatencySummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The file name the page refers to; it is written next to the page.
PLOT_NAME: Final = "performance-latency.png"


def curves(report: BenchReport) -> tuple[dict[str, LatencySummary], dict[str, LatencySummary]]:
    """The ingest curves (best run per target and process count) and the end-to-end ones (per worker
    count, to final and to email), by label; a part that did not run has none."""
    ingest = {
        f"{target.value}, {count} process(es)": report.best(target, count).load.latency_seconds
        for count in report.method.processes
        for target in Target
        if report.has(target, count)
    }
    end_to_end: dict[str, LatencySummary] = {}
    for run in report.pipeline:
        end_to_end[f"to final, {run.workers} worker(s)"] = run.half.to_final
        end_to_end[f"to email, {run.workers} worker(s)"] = run.half.to_email
    return ingest, end_to_end


def write_latency_plot(report: BenchReport, path: Path) -> None:
    """Latency CDFs: ingest and the ceiling on the left, end to end at half the maximum rate on the right."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ingest, end_to_end = curves(report)
    figure = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    _draw(left, ingest, "Webhook ingest (answer latency, at saturation)")
    _draw(right, end_to_end, "End to end at half the maximum rate (from webhook answered)")
    figure.suptitle(f"payments bench {report.run_id}, {report.started_at:%Y-%m-%d %H:%M} UTC")
    figure.savefig(path, format="png")


def _draw(axes: Axes, summaries: dict[str, LatencySummary], title: str) -> None:
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("share of requests at or below")
    axes.grid(True, which="both", alpha=0.3)
    drawn = False
    for label, summary in summaries.items():
        if summary.curve and max(summary.curve) > 0:
            style = "--" if label.startswith(("ceiling", "to email")) else "-"
            ranks = [rank / 100 for rank in CURVE_RANKS]
            axes.plot(_milliseconds(summary.curve), ranks, style, label=label, drawstyle="steps-post")
            drawn = True
    if drawn:
        _log_milliseconds(axes)
        axes.legend(fontsize=8, loc="lower right")
    else:
        axes.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=axes.transAxes)


def _log_milliseconds(axes: Axes) -> None:
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    axes.set_xscale("log")
    # Plain milliseconds at 1, 2 and 5 of each decade rather than powers of ten.
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _milliseconds(curve: Sequence[float]) -> list[float]:
    # A log axis cannot show 0; a microsecond stands for "no time at all".
    return [max(value * 1000, 1e-3) for value in curve]
