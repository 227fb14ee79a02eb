"""Export: an ONNX graph of the model, and the encoder as a sentence-transformers folder."""
