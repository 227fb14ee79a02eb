"""CoNLL columns: one word per line, the word first and its tag last, a blank line between sentences."""

from __future__ import annotations

from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.columns import Columns
from mtst.data.tags import BioChecker
from mtst.data.textfile import read_lines
from mtst.errors import DataError


class _Sentences:
    """Collects word lines into examples, one per blank-line-separated block."""

    def __init__(self, path: Path, bio: BioChecker):
        self.path, self.bio = path, bio
        self.examples: list[Example] = []
        self.words: list[str] = []
        self.tags: list[str] = []
        self.lines: list[int] = []

    def add(self, word: str, tag: str, line: int) -> None:
        self.words.append(word)
        self.tags.append(tag)
        self.lines.append(line)

    def end(self) -> None:
        if self.words:
            annotations = {"tags": self.bio.check(self.tags, self.lines)}
            self.examples.append(Example.from_words(self.words, annotations, f"{self.path}:{self.lines[0]}"))
            self.words, self.tags, self.lines = [], [], []


def read_conll(path: str | Path, strict: bool = False) -> list[Example]:
    """CoNLL columns: the word first and its tag last on each line, a blank line between sentences."""
    path = Path(path)
    lines = read_lines(path, strict)
    columns_of, bio = Columns(path, strict), BioChecker(path, strict)
    sentences = _Sentences(path, bio)
    first_row: tuple[int, int] | None = None  # (line, columns) of the first word line: every line has as many
    for number, line in enumerate(lines, start=1):
        columns = columns_of(line, number)
        if not columns:
            sentences.end()
            continue
        if columns[0] == "-DOCSTART-":
            continue
        if len(columns) < 2:
            raise DataError(path, number, f"expected a word and a tag, found 1 column ({columns[0]!r})")
        first_row = first_row or (number, len(columns))
        if len(columns) != first_row[1]:  # e.g. `Peter Blackburn B-PER`: a word would be dropped
            problem = f"{len(columns)} columns, but line {first_row[0]} has {first_row[1]}"
            raise DataError(path, number, f"{problem}; every line holds the same columns, the word first, the tag last")
        sentences.add(columns[0], columns[-1], number)
    sentences.end()
    if not sentences.examples:
        raise DataError(path, None, "no sentences found")
    columns_of.repair.report()
    bio.report()
    return sentences.examples


FORMAT = DataFormat(
    name="conll",
    suffixes=(".txt", ".conll", ".iob", ".bio", ".tsv"),
    reads="one word per line, word first and BIO tag last, a blank line between sentences",
    read=lambda path, options: read_conll(path, options.strict),
)
