"""Optional CEL expressions over a statement (``steps[].expressions``), evaluated with
``cel-python``, imported only when a policy has one. Each expression sees ``statement`` (the whole
in-toto Statement as JSON), ``predicate``, ``predicateType`` and ``subject`` and must be true."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from attest.statement import Statement
from verify.errors import PolicyFileError

__all__ = ["check_expressions", "compile_expression"]


@functools.lru_cache(maxsize=256)
def compile_expression(text: str) -> Any:
    """A compiled CEL program; :class:`PolicyFileError` if it does not parse."""
    try:
        import celpy
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise PolicyFileError("CEL expressions need cel-python (pip install cel-python)") from e
    env = celpy.Environment()
    try:
        return env.program(env.compile(text))
    except Exception as e:  # celpy raises its own parse errors
        raise PolicyFileError(f"expression {text!r} does not compile: {e}") from e


def check_expressions(texts: Sequence[str], statement: Statement) -> str:
    """Why ``statement`` fails one of ``texts``, or ``""`` when all are true."""
    if not texts:
        return ""
    import celpy
    from celpy.adapter import json_to_cel

    doc = statement.to_dict()
    activation = {
        "statement": json_to_cel(doc),
        "predicate": json_to_cel(doc.get("predicate") or {}),
        "predicateType": json_to_cel(statement.predicate_type),
        "subject": json_to_cel(doc.get("subject") or []),
    }
    for text in texts:
        try:
            value = compile_expression(text).evaluate(activation)
        except PolicyFileError:
            raise
        except Exception as e:
            return f"expression {text!r} could not be evaluated: {e}"
        if not (isinstance(value, celpy.celtypes.BoolType | bool) and bool(value)):
            return f"expression {text!r} is {value}"
    return ""
