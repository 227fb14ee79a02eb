"""Confidence a user can act on: temperature scaling fitted on dev, and thresholds with a fallback label."""
