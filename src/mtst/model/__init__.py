"""The model: the encoder, token-state pooling, a CRF layer, and the multi-task model with its checkpoint format."""
