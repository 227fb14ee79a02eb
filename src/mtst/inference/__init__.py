"""Inference: running a model over texts (torch or ONNX), long texts in windows, files in a stream, Ray."""
