"""What this project relies on in MLServer beyond its documented API, each named by a test that
fails if MLServer changes it."""

from __future__ import annotations

import asyncio

import pytest

from mlserver.batching import load_batching
from mlserver.registry import MultiModelRegistry
from mlserver.repository.load import load_model_settings

from santander.layout import SETTINGS_FILE, models_dir
from santander.serving.repository import VerifiedRepository


def test_mlserver_wraps_predict_for_batching_before_load_so_the_runtime_can_drop_the_wrapper(
        three_versions):
    """The runtime batches decoded rows itself and, in load(), drops the batching wrapper
    MLServer's `load_batching` hook set on the instance. That works only because MLServer runs
    its load hooks before `load()`; if it ever ran them after, requests would be batched twice
    (and this test fails)."""
    settings = load_model_settings(str(models_dir(three_versions) / "1" / SETTINGS_FILE))
    settings.max_batch_size, settings.max_batch_time = 8, 0.01
    # The hooks MLServer's server gives its registry (mlserver/server.py).
    registry = MultiModelRegistry(on_model_load=[load_batching])
    model = asyncio.run(registry.load(settings))
    assert "predict" not in vars(model)           # the wrapper was set before load(), then dropped
    assert model.predict.__func__ is type(model).predict


def test_the_repository_finds_each_version_folder_through_mlserver_public_helpers(
        three_versions):
    """Retired versions are found from the folder MLServer resolves the artifact `uri` in
    (`mlserver.utils.to_absolute_path`), not from a private attribute of the settings."""
    offered = asyncio.run(VerifiedRepository(str(three_versions)).list())
    assert [settings.parameters.version for settings in offered] == [None, "1"]  # default, 1


def test_a_model_entry_without_a_version_is_the_default_over_numbered_ones(three_versions):
    """`santander promote` chooses the version that answers requests naming none by offering it
    a second time with no version (santander/serving/repository.py): MLServer's registry takes
    such an entry as the default over every numbered one, whether registered before or after
    them, and loading another unversioned entry replaces it. If that changes, this fails."""
    numbered = load_model_settings(str(models_dir(three_versions) / "1" / SETTINGS_FILE))

    def unversioned(serves: str):
        entry = numbered.model_copy(deep=True)
        entry.parameters.version = None
        entry.parameters.extra = {**entry.parameters.extra, "serves_version": serves}
        return entry

    async def defaults() -> list[tuple[str | None, str]]:
        registry = MultiModelRegistry()
        first = await registry.load(unversioned("1"))
        newer = numbered.model_copy(deep=True)
        newer.parameters.version = "9"
        await registry.load(newer)
        seen = [(await registry.get_model(numbered.name)).version]
        replaced = await registry.load(unversioned("9"))
        default = await registry.get_model(numbered.name)
        seen.append(default.version)
        return seen + [default is replaced, first.ready,
                       [m.version for m in await registry.get_models(numbered.name)]]

    seen = asyncio.run(defaults())
    assert seen[:3] == [None, None, True]        # the unversioned entry, not "9", and the new one
    assert seen[3] is False                       # the old unversioned entry was unloaded
    assert sorted(v or "" for v in seen[4]) == ["", "9"]


def test_mlserver_converts_grpc_requests_in_the_converter_our_fix_wraps():
    """santander.serving.grpc_fixes wraps `ModelInferRequestConverter.to_types`, where MLServer
    unpacks raw tensors before any runtime code runs. If MLServer stopped converting there,
    unreadable raw contents would be INTERNAL again (and this test fails)."""
    import inspect
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc.converters import ModelInferRequestConverter
    from mlserver.grpc.servicers import InferenceServicer
    from mlserver.errors import InferenceError
    from santander.serving import grpc_fixes
    grpc_fixes.install()
    grpc_fixes.install()                          # twice, as model reloads do: wrapped once
    assert "ModelInferRequestConverter.to_types" in inspect.getsource(
        InferenceServicer._InsertHeaders)
    tensor = pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32",
                                                   shape=[1, 200])
    for inputs, raw in (([tensor], [b"abc"]),                  # 3 bytes for 200 FP32
                        ([tensor, tensor], [bytes(800)])):     # a raw entry short
        request = pb.ModelInferRequest(inputs=inputs, raw_input_contents=raw)
        with pytest.raises(InferenceError, match="raw_input_contents do not fit"):
            ModelInferRequestConverter.to_types(request)
    fine = pb.ModelInferRequest(inputs=[tensor], raw_input_contents=[bytes(800)])
    assert len(ModelInferRequestConverter.to_types(fine).inputs[0].data) == 200
