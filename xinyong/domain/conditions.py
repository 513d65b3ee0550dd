"""A pack condition (`domain.pack.Condition`) tested on one record's fields, in Python.

The evaluator runs rule conditions in SQL; listing terms and publicity tiers test the same
conditions on the few records at hand, with the same meaning: `in` equals one of the values
for enums, integers and codes, and mentions one of them for text.
"""

from __future__ import annotations

from typing import Any

from xinyong.domain.pack import Condition, FieldType

EXACT = (FieldType.enum, FieldType.integer, FieldType.code)


def _number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def holds(condition: Condition, fields: dict[str, Any], types: dict[str, FieldType]) -> bool:
    if condition.field is None:
        return (all(holds(c, fields, types) for c in condition.all_of)
                and (not condition.any_of or any(holds(c, fields, types) for c in condition.any_of)))
    value = fields.get(condition.field)
    if condition.present is not None:
        return (value not in (None, "")) == condition.present
    if condition.min is not None:
        number = _number(value)
        if number is None or number < condition.min:
            return False
        base = _number(fields.get(condition.ratio_to)) if condition.ratio_to else None
        return base is None or number >= base * condition.min_ratio  # type: ignore[operator]
    if value in (None, ""):
        return False
    if types.get(condition.field) in EXACT:
        return str(value) in (condition.in_ or [])
    return any(v in str(value) for v in condition.in_ or [])
