"""The ``fairjax`` console script: argument parsing and dispatch to the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from fairjax.cli._audit import add_audit_arguments, run_audit
from fairjax.cli._bench import run_bench
from fairjax.cli._demo import _check_png_path, demo

# Plain text: argparse prints it as it is (no reST markup).
DESCRIPTION = """Fairness audits and fair training in JAX: fairjax demo, fairjax audit and
fairjax bench. Also runs as python -m fairjax ...
"""


def _parser() -> argparse.ArgumentParser:
    from fairjax import __version__

    parser = argparse.ArgumentParser(prog="fairjax", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fairjax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train on Adult and print accuracy and fairness")
    p_demo.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples")
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument(
        "--pareto-png",
        default="fairjax_pareto_front.png",
        metavar="PATH",
        help="where to write the Pareto-front plot (needs matplotlib); '' writes none",
    )

    p_audit = sub.add_parser(
        "audit",
        help="fairness report of a CSV/Parquet table of predictions",
        description="Prints the per-group table and the fairness metrics, with bootstrap "
        "intervals, of a table of labels, decisions or scores, and sensitive attributes.",
    )
    add_audit_arguments(p_audit)

    p_bench = sub.add_parser(
        "bench",
        help="run the benchmarks against the peers (source checkout; python -m benchmarks)",
        add_help=False,
    )
    p_bench.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fairjax`` console script (``fairjax demo | audit | bench``).

    Args:
      argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
      The exit code: 0 on success, 2 on a bad table or option (``audit``), a
      ``--pareto-png`` path that cannot be written (``demo``) or a missing source checkout
      (``bench``).

    Example:
      >>> from fairjax import cli
      >>> cli.main(["bench", "--help"]) in (0, 2)  # doctest: +SKIP
      True
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # every option after it belongs to the benchmark runner
        return run_bench(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "demo":
        try:  # before the minute of training, not after it
            _check_png_path(args.pareto_png or None, "--pareto-png")
        except ValueError as err:
            print(f"fairjax demo: {err}", file=sys.stderr)
            return 2
        with np.printoptions(precision=4):  # for the demo's tables; the caller's are kept
            demo(
                bootstrap_resamples=args.bootstrap,
                seed=args.seed,
                pareto_path=args.pareto_png or None,
            )
    elif args.command == "audit":
        return run_audit(args)
    elif args.command == "bench":
        return run_bench(args.args)
    return 0
