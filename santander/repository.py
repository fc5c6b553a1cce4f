"""Kept so that a settings.json written before the serving/ folder existed
("model_repository_implementation": "santander.repository.VerifiedRepository") still works."""

from santander.serving.repository import VerifiedRepository

__all__ = ["VerifiedRepository"]
