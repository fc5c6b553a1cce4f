"""The MLServer runtime: serves whichever family won, at its tuned threshold.

Behind MLServer's public `MLModel` API only, so any V2 server able to host an MLModel can run
it. Imports no training code: the artifact reader, the codec and the schema are all it needs.
"""

from __future__ import annotations

from pathlib import Path

from mlserver import MLModel
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters
from mlserver.utils import get_model_uri

from santander import artifact, heap
from santander.codec import decode_features, encode_outputs, requested_outputs
from santander.errors import ExportError


class SantanderRuntime(MLModel):
    async def load(self) -> bool:
        extra = (self.settings.parameters.extra or {}) if self.settings.parameters else {}
        try:
            path = Path(await get_model_uri(self.settings))
            self._threshold = float(extra["threshold"])
            self._model = artifact.load(path, extra["artifact_format"])
        except (ExportError, KeyError, ValueError, MLServerError) as exc:
            raise ExportError(f"model {self.name} version {self.version} cannot load: "
                              f"{exc}") from exc
        self._card = extra.get("model_card", {})
        # MLServer's adaptive batching has wrapped self.predict before load() runs. Checking
        # each request before it can join a batch means a bad request fails alone, and
        # duplicate input names are seen before the batcher merges inputs by name.
        batched_predict = self.predict

        async def predict_checked(payload: InferenceRequest) -> InferenceResponse:
            requested_outputs(payload)
            decode_features(payload)
            return await batched_predict(payload)

        self.predict = predict_checked
        heap.tune_for_serving()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = requested_outputs(payload)
        X = decode_features(payload)
        proba = self._model.predict_proba(X)[:, 1]
        return InferenceResponse(
            id=payload.id, model_name=self.name, model_version=self.version,
            outputs=encode_outputs(outputs, proba, self._threshold))

    async def metadata(self) -> MetadataModelResponse:
        # The stock metadata carries only the content type; users want the model card too.
        metadata = await super().metadata()
        metadata.parameters = Parameters(threshold=self._threshold, model_card=self._card)
        return metadata
