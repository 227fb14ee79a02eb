"""Helpers the kinds' metrics share."""

from __future__ import annotations


def plain(value):
    """Reports from sklearn/seqeval hold numpy scalars; JSON wants Python numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") else value
