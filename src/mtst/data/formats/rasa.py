"""Rasa NLU training data (YAML): `nlu:` → `- intent: NAME` → `examples: |` with `- text [span](type)` lines.

Kept: the intent (field `label`) and entity spans (field `tags`, all `O` for an example without one); the
entity markup is read by rasa_markup.py. `synonym:`, `regex:` and `lookup:` entries hold no training examples
and are skipped; `stories`, `rules` and other top-level keys are ignored. A key given twice anywhere and a
folded `examples: >` block (which would merge the examples into one) are refused with their line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.rasa_markup import Markup
from mtst.data.textfile import read_lines
from mtst.errors import DataError

NOT_EXAMPLES = ("synonym", "regex", "lookup")
logger = logging.getLogger("mtst.data")


def read_rasa(path: str | Path, strict: bool = False) -> list[Example]:
    path = Path(path)
    root = _compose(path, "\n".join(read_lines(path, strict)))
    nlu = _value(root, "nlu")
    if nlu is None:
        raise DataError(path, 1, "no `nlu:` section: a Rasa training data file lists its intents under `nlu:`")
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError(path, _line(nlu), "`nlu:` must be a list of `- intent: NAME` entries")
    markup = Markup(path, strict)
    examples = []
    for entry in nlu.value:
        examples += _intent_examples(entry, path, markup)
    markup.report()
    if not examples:
        raise DataError(path, _line(nlu), "no intent examples under `nlu:`")
    return examples


def _compose(path: Path, text: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise DataError(path, None, "not valid YAML (nested too deeply)") from None
    except yaml.reader.ReaderError as error:  # a character YAML does not allow, e.g. a control character
        line = text.count("\n", 0, error.position) + 1
        raise DataError(path, line, f"not valid YAML (character {error.character!r} is not allowed)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise DataError(path, mark.line + 1 if mark else None, f"not valid YAML ({problem})") from None
    if not isinstance(root, yaml.MappingNode):
        raise DataError(path, 1, "expected a mapping with an `nlu:` key at the top level")
    _refuse_repeated_keys(root, path)
    return root


def _refuse_repeated_keys(root: yaml.Node, path: Path) -> None:
    """A key given twice in one mapping (a second `examples:` or `nlu:`): YAML keeps the last one silently.

    Each node is visited once, so the aliases of a YAML bomb cost no more than the text that spells them.
    """
    visited, pending = set(), [root]
    while pending:
        node = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in keys:
                    raise DataError(path, _line(key), f"`{key.value}` given twice")
                keys.add(key.value if isinstance(key, yaml.ScalarNode) else id(key))
                pending += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            pending += node.value


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _value(mapping: yaml.Node, key: str) -> yaml.Node | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value
    return None


def _intent_examples(entry: yaml.Node, path: Path, markup: Markup) -> list[Example]:
    if not isinstance(entry, yaml.MappingNode):
        raise DataError(path, _line(entry), "each `nlu:` entry must be a mapping such as `- intent: NAME`")
    if any(_value(entry, key) is not None for key in NOT_EXAMPLES):
        return []
    intent = _value(entry, "intent")
    if not isinstance(intent, yaml.ScalarNode) or not intent.value.strip():
        raise DataError(path, _line(entry), "entry has no `intent: NAME` (nor synonym, regex or lookup)")
    examples = _value(entry, "examples")
    if examples is None:
        raise DataError(path, _line(entry), f"intent {intent.value!r} has no `examples:`")
    return [markup.example(text, intent.value.strip(), line) for line, text in _example_lines(examples, path)]


def _example_lines(node: yaml.Node, path: Path) -> list[tuple[int, str]]:
    """(line, text) of each `- example` in a block scalar, or of each `- text:` in the list form."""
    if isinstance(node, yaml.SequenceNode):  # examples: [- text: ..., metadata: ...]
        found = []
        for item in node.value:
            text = _value(item, "text") if isinstance(item, yaml.MappingNode) else None
            if not isinstance(text, yaml.ScalarNode):
                raise DataError(path, _line(item), "each item of an `examples:` list needs `text:`")
            found.append((_line(text) + (text.style in ("|", ">")), text.value.strip()))
        return found
    if not isinstance(node, yaml.ScalarNode):
        raise DataError(path, _line(node), "`examples:` must be a block of `- example` lines (examples: |)")
    if node.style != "|" and node.end_mark.line > node.start_mark.line:
        style = "examples: >" if node.style == ">" else "a value over several lines"
        raise DataError(path, _line(node), f"{style} folds the examples into one line; write `examples: |`")
    # A literal block's content starts on the line after `|`; other scalars have no line of their own per example.
    first = _line(node) + 1 if node.style == "|" else _line(node)
    found = []
    for offset, raw in enumerate(node.value.split("\n")):
        line = first + offset if node.style == "|" else first
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("-"):
            raise DataError(path, line, f"expected an example line `- text`, found {stripped[:40]!r}")
        found.append((line, stripped[1:].strip()))
    return found


FORMAT = DataFormat(
    name="rasa",
    suffixes=(".yml", ".yaml"),
    reads="Rasa NLU training data: nlu: → - intent: NAME → examples: | → - fly to [Paris](city)",
    read=lambda path, options: read_rasa(path, options.strict),
)
