"""Masking personal data while it streams, in COPY text format. Pure.

Strategies: ``hash`` (keyed HMAC-SHA256, deterministic within a run so equal values stay
equal and joins on masked keys still match), ``fake`` (plausible, deterministic values
chosen from the column name), ``null``, and ``fixed:VALUE``. Masked values are computed
from the raw value in memory and only the masked value is written to the target.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from . import CloneError

__all__ = [
    "MaskRule",
    "Masker",
    "RowMasker",
    "copy_escape",
    "copy_unescape",
    "parse_mask",
    "parse_masks",
]

STRATEGIES = ("hash", "fake", "null", "fixed")
INT_BOUNDS = {"smallint": 32767, "integer": 2**31 - 1, "bigint": 2**63 - 1}
TEXT_TYPE_RE = re.compile(r"^(text|character varying|character|varchar|char|citext|name)\b")
LENGTH_RE = re.compile(r"\((\d+)\)")
FIRST_NAMES = ("Alex", "Sam", "Robin", "Kim", "Jordan", "Taylor", "Morgan", "Casey")
LAST_NAMES = ("Smith", "Meyer", "Rossi", "Novak", "Garcia", "Berg", "Silva", "Kowalski")


@dataclass(frozen=True)
class MaskRule:
    table: str
    column: str
    strategy: str
    value: str | None = None

    def __str__(self) -> str:
        suffix = f":{self.value}" if self.strategy == "fixed" else ""
        return f"{self.table}.{self.column}={self.strategy}{suffix}"


def parse_mask(spec: str) -> MaskRule:
    """``table.column=strategy`` (strategy: hash, fake, null or fixed:VALUE)."""
    target, sep, strategy = spec.partition("=")
    table, dot, column = target.strip().rpartition(".")
    if not sep or not dot or not table or not column:
        raise CloneError(f"--mask {spec!r}: expected table.column=strategy")
    name, _, value = strategy.partition(":")
    name = name.strip().lower()
    if name not in STRATEGIES:
        raise CloneError(f"--mask {spec!r}: unknown strategy {name!r} (hash, fake, null, fixed:V)")
    if name == "fixed" and not _:
        raise CloneError(f"--mask {spec!r}: fixed needs a value, as fixed:VALUE")
    return MaskRule(table, column.strip(), name, value if name == "fixed" else None)


def parse_masks(specs: Iterable[str] | Mapping[str, str]) -> list[MaskRule]:
    items = [f"{k}={v}" for k, v in specs.items()] if isinstance(specs, Mapping) else list(specs)
    rules = [parse_mask(s) for s in items]
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        if (rule.table, rule.column) in seen:
            raise CloneError(f"--mask given twice for {rule.table}.{rule.column}")
        seen.add((rule.table, rule.column))
    return rules


class Masker:
    """Masks one column's text values; built once per column, checked against its type."""

    def __init__(self, rule: MaskRule, salt: bytes, type_name: str, notnull: bool = False):
        self.rule = rule
        self.salt = salt
        self.type_name = type_name
        base = type_name.split("(")[0].strip()
        length = LENGTH_RE.search(type_name)
        self.max_length = int(length.group(1)) if length and TEXT_TYPE_RE.match(base) else None
        self.kind = self._kind(base)
        if rule.strategy == "null" and notnull:
            raise CloneError(f"--mask {rule}: the column is NOT NULL; use hash, fake or fixed")
        if rule.strategy in ("hash", "fake") and self.kind is None:
            raise CloneError(
                f"--mask {rule}: cannot {rule.strategy} a {type_name} column; use null or fixed"
            )
        self._fn: Callable[[str], str | None] = {
            "hash": self._hash,
            "fake": self._fake,
            "null": lambda _v: None,
            "fixed": lambda _v: rule.value,
        }[rule.strategy]

    @staticmethod
    def _kind(base: str) -> str | None:
        if TEXT_TYPE_RE.match(base):
            return "text"
        if base in INT_BOUNDS or base == "numeric":
            return "int"
        if base == "uuid":
            return "uuid"
        if base == "date":
            return "date"
        return None

    def _digest(self, value: str) -> bytes:
        return hmac.new(self.salt, value.encode(), hashlib.sha256).digest()

    def _fit(self, text: str) -> str:
        return text[: self.max_length] if self.max_length else text

    def _number(self, digest: bytes) -> str:
        bound = INT_BOUNDS.get(self.type_name.split("(")[0].strip(), INT_BOUNDS["integer"])
        return str(int.from_bytes(digest[:8], "big") % bound + 1)

    def _hash(self, value: str) -> str:
        digest = self._digest(value)
        if self.kind == "int":
            return self._number(digest)
        if self.kind == "uuid":
            return str(uuid.UUID(bytes=digest[:16]))
        if self.kind == "date":
            return self._date(digest)
        return self._fit(digest.hex())

    @staticmethod
    def _date(digest: bytes) -> str:
        n = int.from_bytes(digest[:4], "big")
        return f"{1950 + n % 55:04d}-{1 + n // 55 % 12:02d}-{1 + n // 660 % 28:02d}"

    def _fake(self, value: str) -> str:
        digest = self._digest(value)
        if self.kind != "text":
            return self._hash(value)
        col = self.rule.column.lower()
        h = digest.hex()
        if "mail" in col:
            fake = f"user-{h[:12]}@example.invalid"
        elif "phone" in col or "mobile" in col or "fax" in col:
            fake = "+1-555-" + "".join(str(b % 10) for b in digest[:7])
        elif "first" in col or "given" in col:
            fake = FIRST_NAMES[digest[0] % len(FIRST_NAMES)]
        elif "last" in col or "surname" in col or "family" in col:
            fake = LAST_NAMES[digest[0] % len(LAST_NAMES)]
        elif "name" in col:
            first = FIRST_NAMES[digest[0] % len(FIRST_NAMES)]
            fake = f"{first} {LAST_NAMES[digest[1] % len(LAST_NAMES)]} {h[:4]}"
        elif "addr" in col or "street" in col:
            fake = f"{int.from_bytes(digest[:2], 'big') % 999 + 1} Example Street"
        elif col == "ip" or col.endswith("_ip"):
            fake = f"192.0.2.{digest[0] % 254 + 1}"
        else:
            fake = f"fake-{h[:12]}"
        return self._fit(fake)

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None if self.rule.strategy != "fixed" else self.rule.value
        return self._fn(value)


_UNESCAPES = {
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
    ord("v"): "\v",
    ord("\\"): "\\",
}


def copy_unescape(field: bytes) -> str | None:
    """Decode one field of COPY text format (``\\N`` is NULL)."""
    if field == b"\\N":
        return None
    text = field.decode()
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if ord(nxt) in _UNESCAPES:
            out.append(_UNESCAPES[ord(nxt)])
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1 :])
            assert digits is not None
            out.append(chr(int(digits.group(0), 8)))
            i += 1 + len(digits.group(0))
        elif nxt == "x" and re.match(r"[0-9a-fA-F]", text[i + 2 : i + 3]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", text[i + 2 :])
            assert digits is not None
            out.append(chr(int(digits.group(0), 16)))
            i += 2 + len(digits.group(0))
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def copy_escape(value: str | None) -> bytes:
    """Encode one field in COPY text format."""
    if value is None:
        return b"\\N"
    return (
        value.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .encode()
    )


class RowMasker:
    """Rewrites masked fields of COPY text rows; chunks may split rows anywhere."""

    def __init__(self, maskers: Mapping[int, Masker]):
        self.maskers = dict(maskers)
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = data
            return b""
        self._pending = data[end + 1 :]
        return b"".join(self._row(line) + b"\n" for line in data[:end].split(b"\n"))

    def finish(self) -> bytes:
        if self._pending:
            raise CloneError("COPY stream ended in the middle of a row")
        return b""

    def _row(self, line: bytes) -> bytes:
        fields = line.split(b"\t")
        for idx, masker in self.maskers.items():
            fields[idx] = copy_escape(masker(copy_unescape(fields[idx])))
        return b"\t".join(fields)
