"""Readers for annotation tools' exports: Rasa NLU YAML, Label Studio JSON, doccano JSONL.

Each module has `read_X(path, ...) -> list[Example]` raising `DataError` with `file:line`, and a cheap
`looks_like_X(path)` that `readers.detect_format` asks, so format detection still lives in one place.
Character spans become BIO tags through the same converter as the JSONL reader's `entities`.
"""

# Importing the modules registers them with mtst.data.readers (label_studio first: its sniffer is asked first).
from mtst.data.tools import label_studio, doccano, rasa  # noqa: E402, F401, I001
