"""YAML documents with the line number of every node, for error messages."""

from __future__ import annotations

import re

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2), not a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class YamlSyntaxError(ValueError):
    """Raised for a document that is not valid YAML; the message has the line."""


def parse_yaml(text, filename="<recipe>"):
    """Parses YAML safely and records where each node starts.

    Duplicate keys are errors (plain YAML silently keeps the last one).

    Args:
        text: the document.
        filename: used in error messages.

    Returns:
        `(data, lines)`: plain Python data, and `{path: line}` where `path` is
        a tuple of keys and indices (`("stages", 0, "name")`) and `line` is
        1-based.

    Raises:
        YamlSyntaxError: malformed YAML or a duplicate key.
    """
    lines = {}
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = _convert(loader, node, (), lines, filename)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise YamlSyntaxError(f"{where}: invalid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(f"{filename}: invalid YAML: {error}") from None
    return data, lines


def _convert(loader, node, path, lines, filename):
    if node is None:
        return None
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise YamlSyntaxError(
                    f"{filename}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            result[key] = _convert(loader, value_node, path + (key,), lines, filename)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, path + (index,), lines, filename)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
