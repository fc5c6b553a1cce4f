"""Rolling out on a real MLServer with its prediction log: shadow scoring of the default's
requests (logged with the same request ids and rows, never answered), kept by a restart."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from santander.cli import main
from santander.loader import load_version
from santander.layout import models_dir
from santander.ops.launcher import running_server
from santander.prediction_log.readers import open_log, read_predictions
from santander.prediction_log.tables import predictions
from santander.schema import FEATURES
from santander.v2_client import V2Client

from helpers import log_settled, two_versions

pytestmark = pytest.mark.server


def _probability(answer: dict) -> list[float]:
    return next(o["data"] for o in answer["outputs"] if o["name"] == "probability")


def test_a_shadow_logs_the_defaults_requests_and_rows_and_never_answers(tmp_path, capsys):
    repo = tmp_path / "deploy"
    X = two_versions(repo)
    offline = ["--repository", str(repo), "--url", "http://127.0.0.1:9"]
    assert main(["promote", "1", *offline]) == 0
    assert main(["shadow", "2", *offline]) == 0
    with running_server(repo, tmp_path / "server") as srv:
        client = V2Client(srv.http_url)
        answers = [client.infer("xgboost-model", None, X[i:i + 2], request_id=f"req-{i}")
                   for i in range(0, 40, 2)]
        assert {a["model_version"] for a in answers} == {"1"}
        log_settled(srv.metrics_url)
        assert client.metadata("xgboost-model")["parameters"]["shadow"] == \
            {"version": "2", "rate": 1.0}
    capsys.readouterr()
    log = open_log(repo)
    default = read_predictions(log, "xgboost-model", "1")
    shadow = _rows_of(log, "2")
    assert len(default) == len(shadow) == 40
    key = ["request_id", "row_index"]
    default, shadow = default.sort_values(key), shadow.sort_values(key)
    assert default[key].values.tolist() == shadow[key].values.tolist()
    # The features are written once, in the default's row; the shadow's rows refer to it.
    assert (shadow["features"] == b"").all()
    assert read_predictions(log, "xgboost-model", "2").empty       # rows version 2 answered
    # The answers are the default's alone; the shadow's scores are version 2's own, on the
    # default's rows.
    answered = np.concatenate([_probability(a) for a in answers])
    np.testing.assert_allclose(default.sort_index()["probability"], answered, rtol=1e-6)
    model_2, threshold_2 = load_version(models_dir(repo) / "2")
    rows = default[list(FEATURES)].to_numpy(np.float32)
    np.testing.assert_allclose(shadow["probability"], model_2.predict_proba(rows)[:, 1],
                               rtol=1e-5)
    assert not np.allclose(shadow["probability"], default["probability"])
    assert (shadow["label"] == (shadow["probability"] >= threshold_2)).all()


def _rows_of(log, version: str) -> pd.DataFrame:
    """Every logged row of a version, the features column as stored."""
    columns = [predictions.c[name] for name in ("request_id", "row_index", "features",
                                                "probability", "label")]
    with log.connect() as connection:
        found = connection.execute(select(*columns).where(
            predictions.c.model_version == version)).all()
    return pd.DataFrame(found, columns=[c.name for c in columns])


def test_a_shadow_at_a_rate_survives_a_restart_and_stops(tmp_path, capsys):
    repo = tmp_path / "deploy"
    X = two_versions(repo)
    with running_server(repo, tmp_path / "server") as srv:
        url = ["--repository", str(repo), "--url", srv.http_url]
        assert main(["shadow", "2", "--rate", "0.5", *url]) == 0
        assert "version 2 scores 50% of the default's requests" in capsys.readouterr().out
    with running_server(repo, tmp_path / "server-again") as srv:
        client = V2Client(srv.http_url)
        for i in range(200):
            client.infer("xgboost-model", None, X[i % 40:i % 40 + 1], request_id=f"a-{i}")
        log_settled(srv.metrics_url)
        url = ["--repository", str(repo), "--url", srv.http_url]
        assert main(["shadow", "--off", *url]) == 0
        for i in range(50):
            client.infer("xgboost-model", None, X[:1], request_id=f"b-{i}")
        log_settled(srv.metrics_url)
    log = open_log(repo)
    shadow = _rows_of(log, "2")
    assert 60 <= len(shadow) <= 140                          # about half of 200 (p < 1e-8)
    assert not shadow["request_id"].str.startswith("b-").any()
    assert len(read_predictions(log, "xgboost-model", "1")) == 250


def test_what_cannot_be_shadowed_is_one_line_and_exit_2(tmp_path, capsys):
    repo = tmp_path / "deploy"
    two_versions(repo)
    offline = ["--repository", str(repo), "--url", "http://127.0.0.1:9"]
    assert main(["promote", "2", *offline]) == 0
    assert main(["retire", "1", *offline]) == 0
    cases = [(["shadow", "2"], "version 2 of 'xgboost-model' is the default"),
             (["shadow", "1"], "version 1 of 'xgboost-model' is retired"),
             (["shadow", "9"], "has no version 9"),
             (["shadow"], "name a version to shadow, or --off")]
    for argv, message in cases:
        assert main([*argv, *offline]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    with pytest.raises(SystemExit):
        main(["shadow", "2", "--rate", "0", *offline])
    assert "must be a share above 0" in capsys.readouterr().err
