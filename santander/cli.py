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
    from santander.training.data.io import write_frame, _suffix
    from santander.training.data.synthetic import generate
    _suffix(Path(args.out))       # refuse an unsupported file type before generating
    frame = generate(args.rows, seed=args.seed, generator=args.generator)
    out = write_frame(frame, args.out)
    print(f"wrote {len(frame)} rows ({int(frame['target'].sum())} positive) to {out}")
    return 0


def _run_options(args: argparse.Namespace):
    """The RunOptions of train and retrain, from the arguments _training_options adds."""
    from santander.training.train import RunOptions
    return RunOptions(quick=args.quick, repository=args.repository, name=args.name,
                      reports_dir=args.reports, n_jobs=args.jobs,
                      dask_scheduler=args.dask_scheduler,
                      progress=not args.no_progress)


def cmd_train(args: argparse.Namespace) -> int:
    from santander.training.train import run
    outcome = run(args.data, _run_options(args))
    _print_outcome(outcome)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from santander.training.retrain import retrain
    data = args.data
    if args.from_log:
        from datetime import datetime, timezone
        from santander.monitoring.outcomes import write_labelled_rows
        from santander.prediction_log import open_log
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        data, rows = write_labelled_rows(open_log(args.repository), args.name,
                                         config.FROM_LOG_DIR / f"labelled-{stamp}.parquet")
        print(f"{rows:,} labelled rows from the prediction log: {data}")
    outcome = retrain(data, base=args.base, reselect=args.reselect, append=args.append,
                      options=_run_options(args))
    retraining = outcome.report["model_card"]["retraining"]
    base = retraining["base_on_this_holdout"]
    print(f"base: version {retraining['base_version']} ({retraining['data']}); on this "
          f"holdout F1 {base['f1']:.4f}  ROC AUC {base['roc_auc']:.4f}")
    _print_outcome(outcome)
    print(f"serve it without a restart: python -m santander promote {outcome.version}")
    return 0


def _print_outcome(outcome) -> None:
    card = outcome.report["model_card"]
    holdout = outcome.report["holdout"]
    print(f"winner: {card['family']} {card['hyperparameters']} threshold {card['threshold']:.4f}")
    print(f"holdout: F1 {holdout['f1']:.4f}  precision {holdout['precision']:.4f}  "
          f"recall {holdout['recall']:.4f}  ROC AUC {holdout['roc_auc']:.4f}  "
          f"PR AUC {holdout['pr_auc']:.4f}")
    print(f"version: {outcome.version} ({outcome.version_dir})")
    print(f"report: {outcome.report_dir / 'report.json'}")
    if outcome.tracking_run:
        from santander.training.tracking import tracking_uri
        print(f"MLflow run: {outcome.tracking_run} ({tracking_uri()}; "
              "`python -m santander ui` to browse)")


def cmd_versions(args: argparse.Namespace) -> int:
    from santander.ops.versions import AdminClient, version_table
    rows, server_answered = version_table(args.repository, args.name,
                                          AdminClient(args.url, timeout=5))
    if not rows:
        print(f"no versions of '{args.name}' in {args.repository}")
        return 0
    print(f"{'version':>7}  {'state':<9} {'family':<12} {'threshold':>9} {'F1':>7} "
          f"{'ROC AUC':>7} {'rows':>8}  {'data fingerprint':<16}  trained at")
    for row in rows:
        print(f"{row['version']:>7}  {row['state']:<9} {str(row['family']):<12} "
              f"{_num(row['threshold']):>9} {_num(row['holdout_f1']):>7} "
              f"{_num(row['holdout_roc_auc']):>7} {str(row['rows']):>8}  "
              f"{str(row['data_fingerprint']).removeprefix('sha256:')[:16]:<16}  {row['trained_at']}")
    if not server_answered:
        print(f"(no server at {args.url}: 'active' versions are served when it starts)")
    return 0


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_promote(args: argparse.Namespace) -> int:
    from santander.ops.versions import AdminClient, promote
    version, served = promote(args.repository, args.version, args.name,
                              AdminClient(args.url))
    return _report_served("promoted", version.number, served, args.url)


def cmd_retire(args: argparse.Namespace) -> int:
    from santander.ops.versions import AdminClient, retire
    version, served = retire(args.repository, args.version, args.name,
                             AdminClient(args.url))
    return _report_served("retired", version.number, served, args.url)


def _report_served(action: str, number: int, served: list[int] | None, url: str) -> int:
    if served is None:
        print(f"{action} version {number}; no server at {url}: takes effect when it starts")
    else:
        print(f"{action} version {number}; {url} now serves versions "
              f"{', '.join(map(str, served)) or 'none'}")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    from santander.monitoring.outcomes import read_labels, record_outcomes
    from santander.prediction_log import open_log
    labels = read_labels(args.data)
    recorded = record_outcomes(open_log(args.repository), labels, args.data)
    print(f"recorded {recorded.labels:,} outcome(s) from {args.data}: {recorded.matched:,} "
          f"label logged rows" + (f", {recorded.unmatched:,} match none yet (not logged, "
                                  "sampled out, or still queued)" if recorded.unmatched else ""))
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from santander.monitoring.live import live_metrics
    from santander.prediction_log import open_log
    results = live_metrics(open_log(args.repository), args.name, args.version)
    if not results:
        print("no labelled predictions" + (f" for version {args.version}" if args.version
                                           else "") +
              " yet: record outcomes with `python -m santander outcomes --data labels.csv`")
        return 0
    print(f"{'version':>7} {'rows':>8} {'positives':>9} {'precision':>9} {'recall':>7} "
          f"{'F1':>7} {'ROC AUC':>7}  logged")
    for r in results:
        print(f"{r['version']:>7} {r['rows']:>8,} {r['positives']:>9,} {r['precision']:>9.4f} "
              f"{r['recall']:>7.4f} {r['f1']:>7.4f} {_num(r['roc_auc']):>7}  "
              f"{r['first']:%Y-%m-%d %H:%M} .. {r['last']:%Y-%m-%d %H:%M}")
    return 0


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be a share from 0 to below 1")
    return value


def _since(text: str):
    """A start time: ISO 8601 (UTC unless it says), or an age such as 90m, 12h, 7d."""
    from datetime import datetime, timedelta, timezone
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(timezone.utc) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO time (2026-11-23T18:00) or an age "
                                         "(90m, 12h, 7d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_monitor(args: argparse.Namespace) -> int:
    from santander.layout import reports_dir
    from santander.monitoring.drift import monitor_version
    from santander.prediction_log import open_log
    result = monitor_version(open_log(args.repository), args.repository, args.name,
                             args.version, args.since, args.threshold,
                             args.reports or reports_dir(args.repository))
    print(result.verdict())
    return 1 if result.drifted else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from santander.ops.launcher import mlserver_command, server_environment
    command = mlserver_command(args.repository)
    env = server_environment(host=args.host, http_port=args.http_port,
                             grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    print(" ".join(command), flush=True)
    os.execvpe(command[0], command, env)
    return 0  # not reached


def cmd_serve_and_ask(args: argparse.Namespace) -> int:
    """Start the server, send request.py's default request, stop: the end of `make run`."""
    import subprocess
    from santander.ops.launcher import running_server
    request_py = Path(__file__).resolve().parents[1] / "request.py"
    with running_server(args.repository, args.workdir) as server:
        print(f"MLServer ready at {server.http_url} (log: {server.log})", flush=True)
        return subprocess.call([sys.executable, str(request_py), "--url", server.http_url])


def cmd_ui(args: argparse.Namespace) -> int:
    from santander.training.tracking import ui_command
    command = ui_command(args.host, args.port)
    print(f"MLflow UI on http://{args.host}:{args.port} ({' '.join(command)})", flush=True)
    os.execvp(command[0], command)
    return 0  # not reached


def cmd_app(args: argparse.Namespace) -> int:
    from santander.app.launch import app_command, app_environment
    command = app_command(args.host, args.port)
    print(f"the app on http://{args.host}:{args.port} (server {args.url}, repository "
          f"{args.repository})", flush=True)
    os.execvpe(command[0], command, app_environment(args.url, args.repository))
    return 0  # not reached


def cmd_derive_stats(args: argparse.Namespace) -> int:
    from santander.training.data.stats import write_feature_table
    print(f"wrote {write_feature_table(args.source, args.out)}")
    return 0


def _training_options(parser: argparse.ArgumentParser) -> None:
    """Where a training run writes, and how it runs: shared by train and retrain."""
    parser.add_argument("--repository", default=str(config.DEPLOY_DIR))
    parser.add_argument("--name", default=config.MODEL_NAME)
    parser.add_argument("--reports", default=None,
                        help="where reports go (default: the repository's reports/ folder)")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel fits (-1: all cores)")
    parser.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="run the CV fits on this Dask cluster (tcp://host:8786)")
    parser.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="santander", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make-data", help="write the built-in synthetic training data")
    make.add_argument("--rows", type=_rows, default=config.DEFAULT_ROWS)
    make.add_argument("--seed", type=int, default=config.SEED)
    make.add_argument("--generator", choices=("santander", "alternative"), default="santander",
                      help="the built-in data (default), or a second one with a known "
                           "posterior for checking model quality")
    make.add_argument("--out", default=str(config.DEFAULT_DATA), help=".csv or .parquet")
    make.set_defaults(func=cmd_make_data)

    train = commands.add_parser("train", help="select, evaluate and export a new model version")
    train.add_argument("--data", default=str(config.DEFAULT_DATA))
    train.add_argument("--quick", action="store_true",
                       help=f"{config.QUICK_ROWS} rows and reduced search spaces")
    _training_options(train)
    train.set_defaults(func=cmd_train)

    retrain = commands.add_parser("retrain", help="train the next version on new data")
    source = retrain.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="the new data (.csv or .parquet)")
    source.add_argument("--from-log", action="store_true",
                        help="the logged rows whose outcome is known (santander outcomes), "
                             f"written to {config.FROM_LOG_DIR}/ first")
    retrain.add_argument("--base", default=None, help="version to start from (default: newest)")
    retrain.add_argument("--reselect", action="store_true",
                         help="rerun the whole selection instead of refitting the base's winner")
    retrain.add_argument("--append", action="store_true",
                         help="train on the base version's data plus the new data "
                              "(default: the new data alone)")
    retrain.add_argument("--quick", action="store_true",
                         help=f"{config.QUICK_ROWS} rows of the new data, reduced spaces")
    _training_options(retrain)
    retrain.set_defaults(func=cmd_retrain)

    server_url = f"http://{config.SERVER_HOST}:{config.HTTP_PORT}"
    for command, helptext, func in (
            ("versions", "list versions: state, metrics, data fingerprint", cmd_versions),
            ("promote", "serve a version (a running server loads it, no restart)", cmd_promote),
            ("retire", "stop serving a version (its files stay)", cmd_retire)):
        sub = commands.add_parser(command, help=helptext)
        if command != "versions":
            sub.add_argument("version")
        sub.add_argument("--repository", default=str(config.DEPLOY_DIR))
        sub.add_argument("--name", default=config.MODEL_NAME)
        sub.add_argument("--url", default=server_url, help="the running server's REST URL")
        sub.set_defaults(func=func)

    outcomes = commands.add_parser("outcomes", help="record ground truth for logged "
                                   "predictions (by ID_code, or request_id and row_index)")
    outcomes.add_argument("--data", required=True, help="labels (.csv or .parquet) with target")
    outcomes.add_argument("--repository", default=str(config.DEPLOY_DIR))
    outcomes.set_defaults(func=cmd_outcomes)

    live = commands.add_parser("live", help="precision, recall, F1 and ROC AUC per version on "
                               "the logged rows with a known outcome")
    live.add_argument("--version", default=None)
    live.add_argument("--repository", default=str(config.DEPLOY_DIR))
    live.add_argument("--name", default=config.MODEL_NAME)
    live.set_defaults(func=cmd_live)

    watch = commands.add_parser("monitor", help="drift of the logged traffic from a version's "
                                "training rows (Evidently); exits 1 on drift")
    watch.add_argument("--version", default=None,
                       help="default: the newest version with logged rows")
    watch.add_argument("--since", type=_since, default=None,
                       help="only rows logged since: an ISO time (UTC) or an age (12h, 7d)")
    watch.add_argument("--threshold", type=_share, default=config.DRIFT_SHARE,
                       help="drift when more than this share of the 201 columns drifted "
                            f"(default {config.DRIFT_SHARE})")
    watch.add_argument("--repository", default=str(config.DEPLOY_DIR))
    watch.add_argument("--name", default=config.MODEL_NAME)
    watch.add_argument("--reports", default=None,
                       help="where reports go (default: the repository's reports/ folder)")
    watch.set_defaults(func=cmd_monitor)

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

    ui = commands.add_parser("ui", help="the MLflow UI on the tracked runs (127.0.0.1:5000)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    app = commands.add_parser("app", help="the page to try it: score, versions, monitoring "
                              "(Streamlit, 127.0.0.1:8501)")
    app.add_argument("--url", default=server_url, help="the running server's REST URL")
    app.add_argument("--repository", default=str(config.DEPLOY_DIR))
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=int, default=8501)
    app.set_defaults(func=cmd_app)

    derive = commands.add_parser("derive-stats", help="(maintainers) rebuild the generator's "
                                 "feature table from the published statistics")
    derive.add_argument("--source", default="../shared/santander-stats")
    derive.add_argument("--out", default=str(Path(__file__).parent / "training" / "data" / "feature_stats.csv"))
    derive.set_defaults(func=cmd_derive_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SantanderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:        # a full disk, a folder that cannot be written: still one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # The prediction log's database (unreachable, refused a query): still one line.
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        print(f"error: prediction log database: {str(exc).strip().splitlines()[0]}",
              file=sys.stderr)
        return 2
