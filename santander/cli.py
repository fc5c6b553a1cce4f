"""`python -m santander <command>`: argument parsing only; each command calls one stage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from santander import config
from santander.errors import DataError, SantanderError


def _rows(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def cmd_make_data(args: argparse.Namespace) -> int:
    from santander.training.data.io import write_frame, _suffix
    from santander.training.data.synthetic import generate
    out = Path(args.out or config.built_in_data_path(args.rows, args.seed))
    _suffix(out)                  # refuse an unsupported file type before generating
    frame = generate(args.rows, seed=args.seed, generator=args.generator)
    out = write_frame(frame, out)
    print(f"wrote {len(frame)} rows ({int(frame['target'].sum())} positive) to {out}")
    return 0


def _run_options(args: argparse.Namespace):
    """The RunOptions of train and retrain, from the arguments _training_options adds."""
    from santander.training.train import RunOptions
    return RunOptions(quick=args.quick, repository=args.repository, name=args.name,
                      reports_dir=args.reports, n_jobs=args.jobs,
                      dask_scheduler=args.dask_scheduler,
                      progress=not args.no_progress)


def _existing_data(path: str) -> str:
    """The data file, or an error saying how to make or bring one."""
    if not Path(path).exists():
        raise DataError(f"{path}: no such file; make the built-in data with `python -m "
                        "santander make-data` (or `make data`), or bring the Kaggle train.csv "
                        "and pass --data path/to/train.csv")
    return path


def cmd_train(args: argparse.Namespace) -> int:
    from santander.training.train import run
    outcome = run(_existing_data(args.data), _run_options(args))
    _print_outcome(outcome)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from santander.training.retrain import retrain
    data = args.data
    if args.from_log:
        from datetime import datetime, timezone
        from santander.monitoring.outcomes import write_labelled_rows
        from santander.prediction_log.readers import open_log
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
    print(f"next, on live traffic without a restart: python -m santander shadow "
          f"{outcome.version}, then compare and promote (docs/rollout.md)")
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
    from santander.ops.versions import version_table
    from santander.v2_client import V2Client
    rows, server_answered = version_table(args.repository, args.name,
                                          V2Client(args.url, timeout=5))
    if not rows:
        print(f"no versions of '{args.name}' in {args.repository}")
        return 0
    print(f"{'version':>7}  {'state':<9} {'default':<7} {'family':<12} {'threshold':>9} "
          f"{'F1':>7} {'ROC AUC':>7} {'rows':>8}  {'data fingerprint':<16}  trained at")
    for row in rows:
        print(f"{row['version']:>7}  {row['state']:<9} {'yes' if row['default'] else '':<7} "
              f"{str(row['family']):<12} "
              f"{_num(row['threshold']):>9} {_num(row['holdout_f1']):>7} "
              f"{_num(row['holdout_roc_auc']):>7} {str(row['rows']):>8}  "
              f"{str(row['data_fingerprint']).removeprefix('sha256:')[:16]:<16}  {row['trained_at']}")
    for row in rows:
        if row["shadow_rate"] is not None:
            print(f"shadow: version {row['version']} scores {row['shadow_rate']:.0%} of the "
                  "default's logged requests")
    if not server_answered:
        print(f"(no server at {args.url}: 'active' versions are served when it starts)")
    return 0


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_compare(args: argparse.Namespace) -> int:
    from santander.monitoring.compare import compare_versions, report_lines
    from santander.prediction_log.readers import open_log
    comparison = compare_versions(open_log(args.repository), args.name, args.a, args.b)
    print("\n".join(report_lines(comparison, args.name)))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from santander.ops.versions import promote
    from santander.v2_client import V2Client
    if args.if_better:
        from santander.monitoring.compare import B_BETTER, compare_versions
        from santander.ops.versions import current_default
        from santander.prediction_log.readers import open_log
        default = current_default(args.repository, args.name)
        comparison = compare_versions(open_log(args.repository), args.name, str(default),
                                      args.version)
        if comparison.verdict != B_BETTER:
            print(f"not promoted (against the default, version {default}): {comparison.why()}")
            return 1
        print(comparison.why())
    version, served = promote(args.repository, args.version, args.name,
                              V2Client(args.url, timeout=300))
    return _report_served(f"version {version.number} is the default", served, args.url)


def cmd_rollback(args: argparse.Namespace) -> int:
    from santander.ops.versions import rollback
    from santander.v2_client import V2Client
    version, served = rollback(args.repository, args.name, V2Client(args.url, timeout=300))
    return _report_served(f"rolled back: version {version.number} is the default", served,
                          args.url)


def cmd_shadow(args: argparse.Namespace) -> int:
    from santander.ops.versions import shadow
    from santander.v2_client import V2Client
    if args.off == (args.version is not None):
        raise SantanderError("name a version to shadow, or --off to stop the shadow")
    version, served = shadow(args.repository, None if args.off else args.version, args.rate,
                             args.name, V2Client(args.url, timeout=300))
    done = ("no shadow" if version is None else
            f"version {version.number} scores {args.rate:.0%} of the default's requests, "
            "logged only")
    return _report_served(done, served, args.url)


def cmd_retire(args: argparse.Namespace) -> int:
    from santander.ops.versions import retire
    from santander.v2_client import V2Client
    version, served = retire(args.repository, args.version, args.name,
                             V2Client(args.url, timeout=300))
    return _report_served(f"retired version {version.number}", served, args.url)


def _report_served(done: str, served: list[int] | None, url: str) -> int:
    if served is None:
        print(f"{done}; no server at {url}: takes effect when it starts")
    else:
        print(f"{done}; {url} now serves versions {', '.join(map(str, served)) or 'none'}")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    from santander.monitoring.outcomes import read_labels, record_outcomes
    from santander.prediction_log.readers import open_log
    labels = read_labels(args.data)
    recorded = record_outcomes(open_log(args.repository), labels, args.data)
    print(f"recorded {recorded.labels:,} outcome(s) from {args.data}: {recorded.matched:,} "
          f"label logged rows" + (f", {recorded.unmatched:,} match none yet (not logged, "
                                  "sampled out, or still queued)" if recorded.unmatched else ""))
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from santander.monitoring.live import live_metrics
    from santander.prediction_log.readers import open_log
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


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("must be a share above 0, at most 1")
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
    from santander.prediction_log.readers import open_log
    result = monitor_version(open_log(args.repository), args.repository, args.name,
                             args.version, args.since, args.threshold,
                             args.reports or reports_dir(args.repository))
    print(result.verdict())
    return 1 if result.drifted else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from santander.layout import list_versions
    from santander.ops.launcher import mlserver_command, server_environment
    if not list_versions(args.repository, config.MODEL_NAME):
        raise SantanderError(f"no versions of {config.MODEL_NAME} in {args.repository}: train "
                             "one first (`make run`, or `python -m santander train --data "
                             "path/to/train.csv`)")
    command = mlserver_command(args.repository)
    env = server_environment(host=args.host, http_port=args.port,
                             grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    print(f"{' '.join(command)}  (REST http://{args.host}:{args.port}, gRPC "
          f"{args.host}:{args.grpc_port}, metrics :{args.metrics_port})", flush=True)
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help line (an unset one says in words what it means);
    descriptions keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False):
            return action.help or ""
        return super()._get_help_string(action)


# The commands as `santander --help` lists them: by task, each with its one-line help.
COMMAND_GROUPS = (
    ("train", ("make-data", "train", "retrain")),
    ("serve", ("serve", "versions", "promote", "rollback", "shadow", "compare", "retire")),
    ("watch", ("outcomes", "live", "monitor", "app", "ui")),
    ("other", ("serve-and-ask", "derive-stats")),
)

EXIT_CODES = """exit codes: 0 done; 1 a check said no (monitor: the traffic drifted);
2 an error, said in one line with the next step (request.py uses the same codes)"""


def _add(commands, name: str, helptext: str, func) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, description=helptext, formatter_class=_HelpFormatter)
    sub.set_defaults(func=func, helptext=helptext)
    return sub


def _repository(parser: argparse.ArgumentParser, name: bool = True) -> None:
    parser.add_argument("--repository", default=str(config.DEPLOY_DIR),
                        help="the model repository (MLServer's folder)")
    if name:
        parser.add_argument("--name", default=config.MODEL_NAME, help="the served model's name")


def _server_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=f"http://{config.SERVER_HOST}:{config.HTTP_PORT}",
                        help="the running server's REST URL")


def _setting(variable: str | None, default):
    """A default that an MLSERVER_* variable, when set, replaces (so help shows what applies)."""
    return os.environ.get(variable, default) if variable else default


def _listen(parser: argparse.ArgumentParser, port: int, what: str,
            variables: tuple[str, str] | None = None) -> None:
    host_variable, port_variable = variables or (None, None)
    parser.add_argument("--host", default=_setting(host_variable, config.SERVER_HOST),
                        help=f"the address {what} listens on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=_setting(port_variable, port),
                        help=f"the port {what} listens on" + (" (REST)" if variables else ""))


def _training_options(parser: argparse.ArgumentParser) -> None:
    """Where a training run writes, and how it runs: shared by train and retrain."""
    _repository(parser)
    parser.add_argument("--reports", default=None,
                        help="where reports go (default: the repository's reports/ folder)")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel fits (-1: all cores)")
    parser.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="run the CV fits on this Dask cluster (tcp://host:8786)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="santander", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    make = _add(commands, "make-data", "write the built-in synthetic training data",
                cmd_make_data)
    make.add_argument("--rows", type=_rows, default=config.DEFAULT_ROWS, help="how many rows")
    make.add_argument("--seed", type=int, default=config.SEED, help="the generator's seed")
    make.add_argument("--generator", choices=("santander", "alternative"), default="santander",
                      help="the built-in data, or a second one with a known posterior for "
                           "checking model quality")
    make.add_argument("--out", default=None, help=".csv or .parquet (default: "
                      f"{config.built_in_data_path(rows=0, seed=0).parent}/"
                      "train-<rows>rows-seed<seed>.parquet)")

    train = _add(commands, "train", "select, evaluate and export a new model version", cmd_train)
    train.add_argument("--data", default=str(config.DEFAULT_DATA),
                       help="training rows: the Kaggle train.csv, or parquet of the same columns")
    train.add_argument("--quick", action="store_true",
                       help=f"{config.QUICK_ROWS} rows and reduced search spaces")
    _training_options(train)

    retrain = _add(commands, "retrain", "train the next version on new data", cmd_retrain)
    source = retrain.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="the new data (.csv or .parquet)")
    source.add_argument("--from-log", action="store_true",
                        help="the logged rows whose outcome is known (santander outcomes), "
                             f"written to {config.FROM_LOG_DIR}/ first")
    retrain.add_argument("--version", dest="base", default=None, metavar="VERSION",
                         help="the version to start from (default: the newest)")
    retrain.add_argument("--base", dest="base", help=argparse.SUPPRESS)   # its old name
    retrain.add_argument("--reselect", action="store_true",
                         help="rerun the whole selection instead of refitting the base's winner")
    retrain.add_argument("--append", action="store_true",
                         help="train on the base version's data plus the new data "
                              "(else the new data alone)")
    retrain.add_argument("--quick", action="store_true",
                         help=f"{config.QUICK_ROWS} rows of the new data, reduced spaces")
    _training_options(retrain)

    serve = _add(commands, "serve", "start MLServer on the model repository", cmd_serve)
    _repository(serve, name=False)
    _listen(serve, config.HTTP_PORT, "the server", ("MLSERVER_HOST", "MLSERVER_HTTP_PORT"))
    serve.add_argument("--http-port", dest="port", type=int, help=argparse.SUPPRESS)  # old name
    serve.add_argument("--grpc-port", type=int,
                       default=_setting("MLSERVER_GRPC_PORT", config.GRPC_PORT), help="gRPC's port")
    serve.add_argument("--metrics-port", type=int,
                       default=_setting("MLSERVER_METRICS_PORT", config.METRICS_PORT),
                       help="Prometheus metrics' port")

    for name, helptext, func in (
            ("versions", "list versions: state, default, metrics, data fingerprint",
             cmd_versions),
            ("promote", "make a version the default: it answers requests that name no version "
             "(a running server switches, no restart)", cmd_promote),
            ("rollback", "make the default the version it was before the last promote",
             cmd_rollback),
            ("retire", "stop serving a version (its files stay)", cmd_retire)):
        sub = _add(commands, name, helptext, func)
        if name in ("promote", "retire"):
            sub.add_argument("version", help="the version's number")
        if name == "promote":
            sub.add_argument("--if-better", action="store_true",
                             help="only if `compare` finds it better than the default on the "
                             "logged rows both scored (exit 1 otherwise, saying why)")
        _repository(sub)
        _server_url(sub)

    compare = _add(commands, "compare", "two versions on the rows both scored (a shadow's): "
                   "F1, precision, recall, ROC AUC with paired 95% intervals, and a verdict",
                   cmd_compare)
    compare.add_argument("a", help="version A (usually the default)")
    compare.add_argument("b", help="version B (usually the shadow)")
    _repository(compare)

    shadow = _add(commands, "shadow", "have a version score the default's requests in the "
                  "background: logged, never answered (survives a restart)", cmd_shadow)
    shadow.add_argument("version", nargs="?", help="the version's number")
    shadow.add_argument("--rate", type=_rate, default=1.0,
                        help="the share of the default's logged requests it scores")
    shadow.add_argument("--off", action="store_true", help="stop the shadow")
    _repository(shadow)
    _server_url(shadow)

    outcomes = _add(commands, "outcomes", "record ground truth for logged predictions "
                    "(by ID_code, or request_id and row_index)", cmd_outcomes)
    outcomes.add_argument("--data", required=True, help="labels (.csv or .parquet) with target")
    _repository(outcomes, name=False)

    live = _add(commands, "live", "precision, recall, F1 and ROC AUC per version on the logged "
                "rows with a known outcome", cmd_live)
    live.add_argument("--version", default=None, help="one version (default: every version)")
    _repository(live)

    watch = _add(commands, "monitor", "drift of the logged traffic from a version's training "
                 "rows (Evidently); exits 1 on drift", cmd_monitor)
    watch.add_argument("--version", default=None,
                       help="one version (default: the newest version with logged rows)")
    watch.add_argument("--since", type=_since, default=None,
                       help="only rows logged since: an ISO time (UTC) or an age (12h, 7d)")
    watch.add_argument("--threshold", type=_share, default=config.DRIFT_SHARE,
                       help="drift when more than this share of the 201 columns drifted")
    _repository(watch)
    watch.add_argument("--reports", default=None,
                       help="where reports go (default: the repository's reports/ folder)")

    app = _add(commands, "app", "the page to try it: score, versions, monitoring (Streamlit)",
               cmd_app)
    _server_url(app)
    _repository(app, name=False)
    _listen(app, 8501, "the page")

    ui = _add(commands, "ui", "the MLflow UI on the tracked runs", cmd_ui)
    _listen(ui, 5000, "the UI")

    ask = _add(commands, "serve-and-ask", "start MLServer, send one request with request.py, "
               "stop (the end of `make run`)", cmd_serve_and_ask)
    _repository(ask, name=False)
    ask.add_argument("--workdir", default=".", help="MLServer writes .envs/.metrics here")

    derive = _add(commands, "derive-stats", "(maintainers) rebuild the generator's feature "
                  "table from the published statistics", cmd_derive_stats)
    derive.add_argument("--source", default="../shared/santander-stats",
                        help="the published statistics' folder")
    derive.add_argument("--out", default=str(Path(__file__).parent / "training" / "data" /
                                             "feature_stats.csv"), help="the table to write")

    helps = {name: sub.get_default("helptext") for name, sub in commands.choices.items()}
    assert sorted(helps) == sorted(n for _, names in COMMAND_GROUPS for n in names)
    parser.description = f"{__doc__}\n\ncommands (santander COMMAND --help for each):" + "".join(
        f"\n  {group}:" + "".join(f"\n    {name:<14} {helps[name]}" for name in names)
        for group, names in COMMAND_GROUPS)
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
