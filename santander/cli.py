"""`python -m santander <command>`: argument parsing only; each command calls one stage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from santander import config
from santander.errors import SantanderError


def _rows(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def cmd_make_data(args: argparse.Namespace) -> int:
    from santander.data.io import write_frame, _suffix
    from santander.data.synthetic import generate
    _suffix(Path(args.out))       # refuse an unsupported file type before generating
    frame = generate(args.rows, seed=args.seed)
    out = write_frame(frame, args.out)
    print(f"wrote {len(frame)} rows ({int(frame['target'].sum())} positive) to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from santander.train import run
    outcome = run(args.data, quick=args.quick, repository=args.repository, name=args.name,
                  reports_dir=args.reports, n_jobs=args.jobs,
                  dask_scheduler=args.dask_scheduler, progress=not args.no_progress)
    card = outcome.report["model_card"]
    holdout = outcome.report["holdout"]
    print(f"winner: {card['family']} {card['hyperparameters']} threshold {card['threshold']:.4f}")
    print(f"holdout: F1 {holdout['f1']:.4f}  precision {holdout['precision']:.4f}  "
          f"recall {holdout['recall']:.4f}  ROC AUC {holdout['roc_auc']:.4f}  "
          f"PR AUC {holdout['pr_auc']:.4f}")
    print(f"version: {outcome.version} ({outcome.version_dir})")
    print(f"report: {outcome.report_dir / 'report.json'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from santander.serve import mlserver_command, server_environment
    command = mlserver_command(args.repository)
    env = server_environment(host=args.host, http_port=args.http_port,
                             grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    print(" ".join(command), flush=True)
    os.execvpe(command[0], command, env)
    return 0  # not reached


def cmd_serve_and_ask(args: argparse.Namespace) -> int:
    """Start the server, send request.py's default request, stop: the end of `make run`."""
    import subprocess
    from santander.serve import running_server
    request_py = Path(__file__).resolve().parents[1] / "request.py"
    with running_server(args.repository, args.workdir) as server:
        print(f"MLServer ready at {server.http_url} (log: {server.log})", flush=True)
        return subprocess.call([sys.executable, str(request_py), "--url", server.http_url])


def cmd_derive_stats(args: argparse.Namespace) -> int:
    from santander.data.stats import write_feature_table
    print(f"wrote {write_feature_table(args.source, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="santander", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make-data", help="write the built-in synthetic training data")
    make.add_argument("--rows", type=_rows, default=config.DEFAULT_ROWS)
    make.add_argument("--seed", type=int, default=config.SEED)
    make.add_argument("--out", default=str(config.DEFAULT_DATA), help=".csv or .parquet")
    make.set_defaults(func=cmd_make_data)

    train = commands.add_parser("train", help="select, evaluate and export a new model version")
    train.add_argument("--data", default=str(config.DEFAULT_DATA))
    train.add_argument("--quick", action="store_true",
                       help=f"{config.QUICK_ROWS} rows and reduced search spaces")
    train.add_argument("--repository", default=str(config.DEPLOY_DIR))
    train.add_argument("--name", default=config.MODEL_NAME)
    train.add_argument("--reports", default=str(config.REPORTS_DIR))
    train.add_argument("--jobs", type=int, default=-1, help="parallel fits (-1: all cores)")
    train.add_argument("--dask-scheduler", metavar="ADDRESS",
                       help="run the CV fits on this Dask cluster (tcp://host:8786)")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(func=cmd_train)

    serve = commands.add_parser("serve", help="start MLServer on the model repository")
    serve.add_argument("--repository", default=str(config.DEPLOY_DIR))
    serve.add_argument("--host", default=None, help=f"default {config.SERVER_HOST}")
    serve.add_argument("--http-port", type=int, default=None)
    serve.add_argument("--grpc-port", type=int, default=None)
    serve.add_argument("--metrics-port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    ask = commands.add_parser("serve-and-ask", help="start MLServer, send one request with "
                              "request.py, stop (the end of `make run`)")
    ask.add_argument("--repository", default=str(config.DEPLOY_DIR))
    ask.add_argument("--workdir", default=".", help="MLServer writes .envs/.metrics here")
    ask.set_defaults(func=cmd_serve_and_ask)

    derive = commands.add_parser("derive-stats", help="(maintainers) rebuild the generator's "
                                 "feature table from the published statistics")
    derive.add_argument("--source", default="../shared/santander-stats")
    derive.add_argument("--out", default=str(Path(__file__).parent / "data" / "feature_stats.csv"))
    derive.set_defaults(func=cmd_derive_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SantanderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
