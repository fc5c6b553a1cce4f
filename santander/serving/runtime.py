"""The MLServer runtime: serves whichever family won, at its tuned threshold.

Behind MLServer's public `MLModel` API only, so any V2 server able to host an MLModel can run
it. It batches concurrent requests itself (santander/serving/batching.py), with the standard
`max_batch_size` / `max_batch_time` settings. Imports no training code: the artifact reader,
the codec, the batcher and the schema are all it needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from functools import partial
from pathlib import Path

import numpy as np

from mlserver import MLModel
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters
from mlserver.utils import get_model_uri

from santander.errors import ArtifactError
from santander.serving import gc_tuning, grpc_fixes
from santander.serving.batching import RowBatcher, positive_scores
from santander.serving.limits import RequestLimits
from santander.config import (LOG_SAMPLE_RATE, LOG_SAMPLE_RATE_ENV, LOG_SAMPLE_RATE_SETTING,
                              SERVES_VERSION_SETTING, SHADOW_SETTING)
from santander.layout import repository_of
from santander.schema import OUTPUT_CONTRIBUTIONS
from santander.serving.codec import (RequestError, check_request_id, decode_features,
                                     decode_id_codes, encode_outputs, requested_outputs)
from santander.serving.explain import explainer_for
from santander.prediction_log.writer import Scored, now, writer_for
from santander.loader import load_served
from santander.serving.metrics import BATCH_ROWS, SCORED_ROWS
from santander.serving.shadow import Shadow

logger = logging.getLogger("mlserver")


class SantanderRuntime(MLModel):
    async def load(self) -> bool:
        # In the MLServer process: unreadable gRPC raw tensors are a client error, not INTERNAL.
        grpc_fixes.install()
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        # The repository's entry for the default version has no version of its own and names
        # the one it serves (santander/serving/repository.py): answers, metrics and the log
        # carry that version, whichever entry answered.
        self._version = self.version or extra.get(SERVES_VERSION_SETTING)
        where = f"model {self.name} version {self._version}"
        try:
            path = Path(await get_model_uri(self.settings))
            self._model, self._threshold = load_served(path, extra, where)
            self._limits = RequestLimits.from_settings(extra)
            self._log, self._sample_rate = _prediction_log(path, extra)
        except (ArtifactError, MLServerError, ValueError) as exc:
            raise ArtifactError(f"{where} cannot load: {exc}") from exc
        self._card = extra.get("model_card", {})
        self._explain = explainer_for(self._model)
        # This runtime batches decoded rows itself (santander/serving/batching.py says why),
        # with MLServer's own two settings. When max_batch_size > 1, MLServer's batching hook
        # has already wrapped predict() and predict_stream() and hung its own batcher on this
        # instance. Dropping the three leaves the class's methods, so requests reach RowBatcher
        # without being merged twice, and nothing on the instance points back at it: an
        # unloaded version is freed as soon as its last request ends, not at a full cyclic
        # collection, which the serving thresholds (gc_tuning.py) make rare.
        for hooked in ("predict", "predict_stream", "__adaptive_batching__"):
            self.__dict__.pop(hooked, None)
        self._batches = RowBatcher(partial(positive_scores, self._model),
                                   self.settings.max_batch_size,
                                   self.settings.max_batch_time,
                                   on_batch=BATCH_ROWS.labels(self.name, self._version).observe)
        self._scored_rows = [SCORED_ROWS.labels(self.name, self._version, label)
                             for label in ("0", "1")]
        self._shadow = None
        if extra.get(SHADOW_SETTING) and self._log is not None:
            try:
                self._shadow = Shadow(extra[SHADOW_SETTING], self._log, self.name)
            except (ArtifactError, MLServerError, ValueError) as exc:
                # The default serves regardless: a shadow only ever adds log rows.
                logger.error(f"{where}: no shadow scoring, it cannot load: {exc}")
        gc_tuning.tune_for_serving()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        started = time.perf_counter()
        # Checked and decoded alone, before batching: a bad request fails with its own 400.
        check_request_id(payload)
        self._limits.check_body(payload)
        outputs = requested_outputs(payload)
        X = decode_features(payload, self._limits.max_rows)
        id_codes = decode_id_codes(payload, len(X))
        contributions = (await self._contributions(X) if OUTPUT_CONTRIBUTIONS in outputs
                         else None)
        proba = await self._batches.score(X)
        positives = int(np.count_nonzero(proba >= self._threshold))
        self._scored_rows[1].inc(positives)
        self._scored_rows[0].inc(len(proba) - positives)
        if self._log is not None and (self._sample_rate >= 1.0
                                      or random.random() < self._sample_rate):
            self._log.submit(Scored(
                now(), payload.id, id_codes, self.name, self._version, X, proba,
                self._threshold, (time.perf_counter() - started) * 1000))
            if self._shadow is not None:
                self._shadow.follow(payload.id, id_codes, X)
        return InferenceResponse(
            id=payload.id, model_name=self.name, model_version=self._version,
            outputs=encode_outputs(outputs, proba, self._threshold, contributions))

    async def _contributions(self, X):
        if self._explain is None:
            family = self._card.get("family", "this model's family")
            raise RequestError(f"output {OUTPUT_CONTRIBUTIONS!r} is not available: {family} has "
                               "no exact per-feature explanation (offered for xgboost, "
                               "lightgbm, histogram_nb, additive, logistic and naive_bayes)")
        # Off the event loop: explaining many rows can take a while, and other callers wait.
        return await asyncio.to_thread(self._explain, X)

    async def metadata(self) -> MetadataModelResponse:
        # The stock metadata carries only the content type; users want the model card too, and
        # asked without a version, which version answers such requests.
        metadata = await super().metadata()
        default = {"default_version": self._version} if self.version is None else {}
        if self._shadow is not None:
            default["shadow"] = {"version": self._shadow.version, "rate": self._shadow.rate}
        metadata.parameters = Parameters(threshold=self._threshold, model_card=self._card,
                                         **default)
        return metadata


def _prediction_log(artifact_path: Path, extra: dict):
    """(writer or None, sampling rate) for a version: the log of its repository
    (santander/prediction_log/), shared by every version the process serves. The rate is
    the version's own `log_sample_rate` (model-settings `parameters.extra`) if it has one,
    else SANTANDER_LOG_SAMPLE_RATE's, else LOG_SAMPLE_RATE: one version (a canary) can be
    logged whole while the others are sampled."""
    if LOG_SAMPLE_RATE_SETTING in extra:
        source, given = f"{LOG_SAMPLE_RATE_SETTING} in the model settings", \
            extra[LOG_SAMPLE_RATE_SETTING]
    else:
        source, given = LOG_SAMPLE_RATE_ENV, os.environ.get(LOG_SAMPLE_RATE_ENV,
                                                            str(LOG_SAMPLE_RATE))
    try:
        rate = float(given)
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(given, bool) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"{source}: {given!r} is not a sampling rate, a number from 0 to 1")
    writer = writer_for(repository_of(artifact_path.parent)) if rate > 0.0 else None
    return writer, rate if writer is not None else 0.0
