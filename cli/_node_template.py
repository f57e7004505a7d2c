"""The annotated request file of ``relay247 node template``: JSON with a ``//`` comment
above every field (its English label, whether it is optional, its coded values or format).
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi

from cli._program import program
from node.render import Catalog, load_catalog
from schemas.messages import Body, kind_of

_JSON = msgspec.json.Encoder()


def _unwrap(t: mi.Type) -> mi.Type:
    while True:
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType):
            rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
            if len(rest) != 1:
                return mi.UnionType(tuple(rest))
            t = rest[0]
        else:
            return t


def _struct_for(value: dict[str, Any], t: mi.Type | None) -> mi.StructType | None:
    t = None if t is None else _unwrap(t)
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.UnionType):  # a tagged union (identifiers): pick by tag
        for option in t.types:
            tag_field = option.tag_field if isinstance(option, mi.StructType) else None
            if (
                isinstance(option, mi.StructType)
                and tag_field
                and option.tag == value.get(tag_field)
            ):
                return option
    return None


def _tags(t: mi.Type | None) -> list[str]:
    t = None if t is None else _unwrap(t)
    options = t.types if isinstance(t, mi.UnionType) else ()
    return [str(o.tag) for o in options if isinstance(o, mi.StructType)]


def _item_type(t: mi.Type | None) -> mi.Type | None:
    t = None if t is None else _unwrap(t)
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return t.item_type
    return None


def _describe(t: mi.Type) -> str:
    meta = t if isinstance(t, mi.Metadata) else None
    inner = _unwrap(t)
    item = _item_type(inner)
    if item is not None:
        inner = _unwrap(item)
    if isinstance(inner, mi.EnumType):
        return "one of: " + ", ".join(str(m.value) for m in inner.cls)
    if isinstance(inner, mi.DateTimeType):
        return "date and time with its UTC offset, e.g. 2026-05-12T03:10:00+02:00"
    if isinstance(inner, mi.DateType):
        return "date YYYY-MM-DD"
    schema = (meta.extra_json_schema or {}) if meta else {}
    return str(schema.get("description", ""))


def _comment(cat: Catalog, struct: mi.StructType, field: mi.Field) -> str:
    parts = [cat.field(struct.cls.__name__, field.name)]
    if not field.required:
        parts.append("optional")
    extra = _describe(field.type)
    if extra:
        parts.append(extra)
    return " - ".join(parts)


def _write(
    value: Any, t: mi.Type | None, ind: str, *, head: str, tail: str, out: list[str]
) -> None:
    cat = load_catalog("en")
    if isinstance(value, dict):
        struct = _struct_for(value, t)
        fields = {f.name: f for f in struct.fields} if struct else {}
        items = [(k, v) for k, v in value.items() if v is not None and v not in ([], ())]
        out.append(f"{ind}{head}{{")
        for i, (key, v) in enumerate(items):
            field = fields.get(key)
            if struct is not None and field is not None:
                out.append(f"{ind}  // {_comment(cat, struct, field)}")
            elif key == "kind":
                out.append(f"{ind}  // Kind of message (do not change)")
            elif struct is not None and key == struct.tag_field:
                out.append(f"{ind}  // Type - one of: {', '.join(_tags(t))}")
            sub_tail = "," if i < len(items) - 1 else ""
            name = _JSON.encode(key).decode()
            sub_type = field.type if field else None
            _write(v, sub_type, ind + "  ", head=f"{name}: ", tail=sub_tail, out=out)
        out.append(f"{ind}}}{tail}")
    elif isinstance(value, list | tuple) and any(isinstance(x, dict) for x in value):
        out.append(f"{ind}{head}[")
        for i, item in enumerate(value):
            sep = "," if i < len(value) - 1 else ""
            _write(item, _item_type(t), ind + "  ", head="", tail=sep, out=out)
        out.append(f"{ind}]{tail}")
    else:
        out.append(f"{ind}{head}{_JSON.encode(value).decode()}{tail}")


def annotated_template(body: Body) -> str:
    """Return ``body`` as a request file: JSON with a ``//`` comment above every field.

    Each comment gives the field's English label, whether it is optional, and its coded
    values or format. ``relay247 node new`` and ``send`` ignore comment lines.
    """
    kind = kind_of(body)
    header = [
        f"// relay247 request file: {load_catalog('en').kind(kind)} ({kind}).",
        "// Lines starting with // are comments and are ignored. Replace the example",
        "// values, delete optional fields you do not need, then check and send:",
        f"//   {program()} node new THIS_FILE",
        f"//   {program()} node send THIS_FILE --to MEMBER",
    ]
    lines: list[str] = []
    _write(msgspec.to_builtins(body), mi.type_info(type(body)), "", head="", tail="", out=lines)
    return "\n".join(header + lines) + "\n"
