"""The policy's YAML loader: safe, and refusing a mapping with the same key twice (PyYAML keeps
the last one silently: a second ``steps:`` would replace the reviewed first one) and merge keys
(``<<: *anchor``, whose values a key beside them overrides just as silently). It parses with
libyaml (``CSafeLoader``) when PyYAML was built with it — the pure-Python parser takes a few
milliseconds of every deploy gate's start for a short policy — and the constructor and resolver
are PyYAML's own Python ones either way, so values read the same."""

from __future__ import annotations

from typing import Any

__all__ = ["load_strict"]


def _strict_loader() -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "a merge key (<<) is not allowed in a policy: write the settings out "
                        "(a merged value is overridden silently by a key written beside it)",
                        key_node.start_mark,
                    )
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"duplicate key {key!r}",
                            key_node.start_mark,
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_strict(text: str) -> Any:
    """One YAML document as Python values; ``yaml.YAMLError`` when it is not YAML or repeats a
    key in a mapping."""
    import yaml

    return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
