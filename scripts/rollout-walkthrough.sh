#!/bin/bash
# The rollout walk-through of docs/rollout.md, run for real: retrain, shadow, outcomes, compare,
# promote, roll back. Prints each command and its output. Needs `make setup` and port 8080 free.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
W=${WALK_DIR:-/tmp/santander-walk}; rm -rf "$W"; mkdir -p "$W"
R=$W/deploy
run() { echo "\$ $*" | sed "s#$W/#walk/#g; s#\.venv/bin/python#python#"; "$@" 2>&1 | sed "s#$W/#walk/#g" | grep -v "Warning\|warn(" ; echo "(exit ${PIPESTATUS[0]})"; echo; }
$PY -m santander make-data --rows 40000 --seed 1 --out $W/train.parquet >/dev/null 2>&1
$PY -m santander make-data --rows 40000 --seed 2 --out $W/new.parquet >/dev/null 2>&1
$PY -m santander make-data --rows 20000 --seed 3 --out $W/traffic.parquet >/dev/null 2>&1
$PY -m santander train --data $W/train.parquet --quick --repository $R --no-progress > $W/train.log 2>&1
$PY -m santander serve --repository $R > $W/serve.log 2>&1 &
SERVER=$!
for i in $(seq 1 120); do curl -sf localhost:8080/v2/models/xgboost-model/ready >/dev/null && break; sleep 1; done
run $PY -m santander retrain --data $W/new.parquet --append --repository $R --no-progress
run $PY -m santander versions --repository $R
run $PY -m santander shadow 2 --repository $R
run $PY request.py --data $W/traffic.parquet --rows 3
$PY -c "
import pandas as pd
f = pd.read_parquet('$W/traffic.parquet')
for i in range(40): f.iloc[i * 500:(i + 1) * 500].to_parquet(f'$W/part-{i}.parquet')"
for i in $(seq 0 39); do $PY request.py --data $W/part-$i.parquet --rows 500 --id traffic-$i >/dev/null 2>&1; done
run $PY -m santander compare 1 2 --repository $R
run $PY -m santander outcomes --data $W/traffic.parquet --repository $R
run $PY -m santander compare 1 2 --repository $R
run $PY -m santander promote 2 --if-better --repository $R
run $PY -m santander versions --repository $R
run $PY request.py --data $W/traffic.parquet --rows 1 --id after-promote
run $PY -m santander rollback --repository $R
run $PY request.py --data $W/traffic.parquet --rows 1 --id after-rollback
kill $SERVER; wait $SERVER 2>/dev/null
