"""Every bad-data case: one clear line, non-zero exit, nothing written anywhere."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from santander.cli import main

BAD_CASES = {
    "missing_feature": (lambda f: f.drop(columns=["var_17"]), "missing 1 feature column(s): var_17"),
    "extra_column": (lambda f: f.assign(var_200=1.0), "unexpected column(s) 'var_200'"),
    "non_numeric": (lambda f: f.assign(
        var_3=lambda d: d["var_3"].astype(str).where(d.index != 4, "abc")),
        "column 'var_3' row 5: non-numeric value 'abc'"),
    "nan": (lambda f: f.assign(var_5=lambda d: d["var_5"].where(d.index != 2, np.nan)),
            "column 'var_5' row 3: missing value"),
    "inf": (lambda f: f.assign(var_6=lambda d: d["var_6"].where(d.index != 0, np.inf)),
            "column 'var_6' row 1: non-finite value inf"),
    "target_not_binary": (lambda f: f.assign(target=lambda d: d["target"].where(d.index != 9, 2)),
                          "target must be 0 or 1; row 10 has 2"),
    "duplicate_id": (lambda f: f.assign(ID_code=lambda d: d["ID_code"].where(
        d.index != 8, d["ID_code"][1])), "duplicate ID_code 'train_1' (row 9)"),
    "too_few_positives": (lambda f: f.assign(target=lambda d: (d.index < 3).astype(int)),
                          "too few rows of one class"),
    "missing_target": (lambda f: f.drop(columns=["target"]), "missing column 'target'"),
}


def _train(data, tmp_path):
    return main(["train", "--data", str(data), "--quick", "--no-progress",
                 "--repository", str(tmp_path / "deploy"), "--reports", str(tmp_path / "reports")])


def _assert_nothing_written(tmp_path, data):
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.name]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_training_data_is_refused_with_one_line(case, suffix, small_frame, tmp_path, capsys):
    corrupt, message = BAD_CASES[case]
    frame = corrupt(small_frame.head(300).copy())
    data = tmp_path / f"bad{suffix}"
    if suffix == ".csv":
        frame.to_csv(data, index=False)
    else:
        frame.to_parquet(data, index=False)
    assert _train(data, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    _assert_nothing_written(tmp_path, data)


@pytest.mark.parametrize("content,message", [
    (b"", "file is empty"),
    (b"ID_code,target," + ",".join(f"var_{i}" for i in range(200)).encode() + b"\n",
     "file has no data rows"),
    (b"\x00\x01garbage", "cannot read"),
])
def test_empty_or_unreadable_files(content, message, tmp_path, capsys):
    suffix = ".parquet" if content.startswith(b"\x00") else ".csv"
    data = tmp_path / f"bad{suffix}"
    data.write_bytes(content)
    assert _train(data, tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    _assert_nothing_written(tmp_path, data)


def test_missing_file_and_wrong_type(tmp_path, capsys):
    assert _train(tmp_path / "nope.csv", tmp_path) == 2
    assert "no such file" in capsys.readouterr().err
    other = tmp_path / "data.json"
    other.write_text("{}")
    assert _train(other, tmp_path) == 2
    assert "unsupported file type '.json'" in capsys.readouterr().err
    _assert_nothing_written(tmp_path, other)


def test_cli_process_exits_non_zero_with_one_line(tmp_path):
    data = tmp_path / "empty.csv"
    data.write_text("")
    result = subprocess.run([sys.executable, "-m", "santander", "train", "--data", str(data),
                             "--repository", str(tmp_path / "deploy")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {data}: file is empty\n"
    assert not (tmp_path / "deploy").exists() and not (tmp_path / "reports").exists()
