"""Rasa NLU training data (YAML): `nlu:` → `- intent: NAME` → `examples: |` with `- text [span](type)` lines.

Kept: the intent (field `label`) and entity spans (field `tags`, all `O` for an example without one).
Entity annotations `[text](type)` and `[text]{"entity": "type", ...}` are read; a `role` is kept in the type
as `type.role` (so `city.from` and `city.to` are tagged apart); a synonym value (`[NYC](city:New York)` or
`"value"`) and a `group` do not change which words are tagged, so they are dropped with one counted warning
per file (an error with `strict`). `synonym:`, `regex:` and `lookup:` entries hold no training examples
and are skipped; `stories`, `rules` and other top-level keys are ignored.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import yaml

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.spans import record_example
from mtst.data.repairs import Repair
from mtst.data.textfile import read_lines
from mtst.errors import DataError

# Rasa's own entity syntax: [text](type) or [text](type:synonym), or [text]{json object}.
ENTITY = re.compile(r"\[(?P<text>[^\[\]]+)\](?:\((?P<short>[^()]*)\)|(?P<json>\{[^{}]*\}))")
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
    dropped = Repair(path, "{n} entity synonym values or groups dropped (mtst tags the span as written)", strict)
    examples = []
    for entry in nlu.value:
        examples += _intent_examples(entry, path, dropped)
    dropped.report()
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
    return root


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _value(mapping: yaml.Node, key: str) -> yaml.Node | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value
    return None


def _intent_examples(entry: yaml.Node, path: Path, dropped: Repair) -> list[Example]:
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
    return [_example(text, intent.value.strip(), path, line, dropped) for line, text in _example_lines(examples, path)]


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


def _example(annotated: str, intent: str, path: Path, line: int, dropped: Repair) -> Example:
    text, entities, position = [], [], 0
    for match in ENTITY.finditer(annotated):
        text.append(annotated[position : match.start()])
        start = sum(map(len, text))
        entities.append(
            {"start": start, "end": start + len(match["text"]), "label": _entity_type(match, path, line, dropped)}
        )
        text.append(match["text"])
        position = match.end()
    text.append(annotated[position:])
    plain = "".join(text)
    if re.search(r"\]\(|\]\{", plain):
        raise DataError(path, line, f"malformed entity annotation in {annotated[:60]!r}: use [text](type)")
    if not plain.strip():
        raise DataError(path, line, "empty example")
    return record_example(plain, {"label": intent}, entities, path, line)


def _entity_type(match: re.Match, path: Path, line: int, dropped: Repair) -> str:
    if match["short"] is not None:
        kind, colon, synonym = match["short"].partition(":")
        if colon and synonym.strip():
            dropped.note(line, f"synonym value {synonym.strip()!r} of [{match['text']}]")
        details = {"entity": kind}
    else:
        try:
            details = json.loads(match["json"])
        except (ValueError, RecursionError):
            raise DataError(path, line, f"entity {match['json'][:60]} is not a JSON object") from None
    kind = details.get("entity") if isinstance(details, dict) else None
    if not isinstance(kind, str) or not kind.strip():
        raise DataError(path, line, f"entity [{match['text']}] names no type: write [{match['text']}](type)")
    for key in ("value", "group"):
        if key in details:
            dropped.note(line, f"{key} {details[key]!r} of [{match['text']}]")
    role = details.get("role")
    if role is not None and (not isinstance(role, str) or not role.strip()):
        raise DataError(path, line, f"entity [{match['text']}]: `role` must be a non-empty string")
    return f"{kind.strip()}.{role.strip()}" if role else kind.strip()


FORMAT = DataFormat(
    name="rasa",
    suffixes=(".yml", ".yaml"),
    reads="Rasa NLU training data: nlu: → - intent: NAME → examples: | → - fly to [Paris](city)",
    read=lambda path, options: read_rasa(path, options.strict),
)
