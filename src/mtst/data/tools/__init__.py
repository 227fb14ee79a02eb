"""Readers for annotation tools' exports: Rasa NLU YAML, Label Studio JSON, doccano JSONL.

Each module has `read_X(path, ...) -> list[Example]` raising `DataError` with `file:line`, and a cheap
`looks_like_X(path)` that `readers.detect_format` asks, so format detection still lives in one place.
Character spans become BIO tags through the same converter as the JSONL reader's `entities`.
"""
