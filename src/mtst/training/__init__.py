"""Training: the loop, the optimizer and schedule, freezing strategies, loss weighting, saved state, tracking."""
