"""The model: the encoder, how token states are pooled, the CRF, and the multi-task model with its checkpoint format."""
