"""Evaluation: metrics over a split, error analysis, strategy comparison, training curves."""
