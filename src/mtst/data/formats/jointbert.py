"""JointBERT's layout: a folder per split holding `seq.in` (words), `seq.out` (tags) and `label` (intents)."""

from __future__ import annotations

from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.columns import Columns
from mtst.data.tags import BioChecker
from mtst.data.textfile import read_lines
from mtst.errors import DataError


def read_jointbert(folder: str | Path, strict: bool = False) -> list[Example]:
    """JointBERT layout: `seq.in` (words), `seq.out` (one tag per word), `label` (one per line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, None, "a JointBERT split is a folder holding seq.in, seq.out and label")
    words_file, tags_file, label_file = folder / "seq.in", folder / "seq.out", folder / "label"
    sentences = read_lines(words_file, strict)
    tag_lines = read_lines(tags_file, strict) if tags_file.exists() else None
    labels = read_lines(label_file, strict) if label_file.exists() else None
    for path, lines in ((tags_file, tag_lines), (label_file, labels)):
        if lines is not None:
            _same_length(path, lines, words_file, sentences)
    word_columns, tag_columns = Columns(words_file, strict), Columns(tags_file, strict)
    bio = BioChecker(tags_file, strict)
    examples = []
    for index, sentence in enumerate(sentences):
        line = index + 1
        words = word_columns(sentence, line)
        if not words:
            raise DataError(words_file, line, "empty sentence")
        annotations = {}
        if tag_lines is not None:
            tags = tag_columns(tag_lines[index], line)
            if len(tags) != len(words):
                raise DataError(tags_file, line, f"{len(tags)} tags for {len(words)} words")
            annotations["tags"] = bio.check(tags, line)
        if labels is not None:
            label = labels[index].strip()
            if not label:
                raise DataError(label_file, line, "empty label")
            annotations["label"] = label
        examples.append(Example.from_words(words, annotations, f"{words_file}:{line}"))
    for repairs in (word_columns.repair, tag_columns.repair, bio):
        repairs.report()
    return examples


def _same_length(path: Path, lines: list[str], words_file: Path, sentences: list[str]) -> None:
    if len(lines) < len(sentences):
        counts = f"{path.name} has {len(lines)} lines, {words_file.name} has {len(sentences)}"
        problem = f"no matching line in {path.name} ({counts})"
        raise DataError(words_file, len(lines) + 1, problem)
    if len(lines) > len(sentences):
        problem = f"extra line: {words_file.name} has only {len(sentences)} lines"
        raise DataError(path, len(sentences) + 1, problem)


def is_jointbert_split(path: Path) -> bool:
    return path.is_dir() and (path / "seq.in").exists()


FORMAT = DataFormat(
    name="jointbert",
    suffixes=(),
    reads="a folder per split: seq.in (words), seq.out (one BIO tag per word), label (one per line)",
    read=lambda path, options: read_jointbert(path, options.strict),
    recognises=is_jointbert_split,
)
