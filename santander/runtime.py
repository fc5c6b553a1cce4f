"""Kept so that model-settings.json written before the serving/ folder existed
("implementation": "santander.runtime.SantanderRuntime") still loads."""

from santander.serving.runtime import SantanderRuntime

__all__ = ["SantanderRuntime"]
