"""Personal data: masking C2 values (JR/T 0171-2020) and scanning outputs for unmasked ones.

Masking rules. Every function takes a scalar or a pandas Series and never mutates its input; a
missing scalar (None / NaN / pd.NA) is returned as it is, and a Series comes back as a new str-dtype
Series (same index and name) whose missing values are NaN. Values are first NFKC-normalised
(full-width digits and brackets become ASCII) and stripped; an integer-valued float (a phone column
read with NaN: 13812345678.0) loses its '.0'.

=============  =====================================  ==========================================
kind           rule                                   example
=============  =====================================  ==========================================
mobile         11-digit mobile: first 3 + ``****`` +  13812345678 → 138****5678
               last 4; a +86 / 0086 / 86 prefix and   +86 138-1234-5678 → 138****5678
               spaces, hyphens, brackets are dropped.
               Other phone numbers: ≥ 10 characters   057188886666 → 057*****6666
               keep first 3 + last 4; 7–9 keep the
               last 2; shorter are starred out.
id_number      18 characters: first 6 + 8 stars +     → 110101********1234
               last 4 (birth date hidden).
               15-digit (pre-1999) IDs: first 6 +     → 110101******123
               6 stars + last 3 (YYMMDD hidden, the
               same fields as the 18-digit rule).
               Other documents (passports, permits):  E12345678 → E1*****78
               ≥ 8 characters keep first 2 + last 2,
               shorter are starred out.
person_name    keep the surname, one star per other   张三丰 → 张**, 张三 → 张*,
               character; a compound surname (欧阳,   欧阳娜娜 → 欧阳**;
               司马, …) is kept whole when the name   a 1-character value → *;
               has ≥ 3 characters. Names with ``·``   买买提·艾力 → 买**·**
               or Latin letters keep the first
               character and the separators.
uscc           18 characters: first 8 (登记管理部门 +  91330100MA2XXXXXX1 → 91330100**********
               类别 + 6-digit 行政区划) + 10 stars.
               Other codes ≥ 12 characters (15-digit
               注册号) keep the first 6; shorter ones
               (9-character 组织机构代码) are starred.
account        fixed width: ``****`` + last 4 (the    6222021234567890123 → ****0123
               length, which reveals card type and
               bank, is hidden). Fewer than 8
               characters → ``****``.
org_name       Enterprise names follow 行政区划 + 字号 + 行业 + 组织形式 (名称登记管理规定), so
               the 字号, where a 个体工商户 operator's own name usually sits, is in the middle:
               ≥ 8 characters keep the first 2 and last 2;  杭州顺发贸易有限公司 → 杭州******公司
               5–7 keep the first and last 1;               张记五金店 → 张***店
               ≤ 4 use the person_name rule (a 个体工商户   张三丰 → 张**
               with no 字号 is registered under its
               operator's name). A bracketed or leading
               organisation form (（个体工商户）, 个体户：)
               is set aside and put back unmasked.   张三丰（个体工商户） → 张**(个体工商户)
=============  =====================================  ==========================================

``salted_hash`` gives a join key for masked lists: the first 16 hex digits of
sha256(salt + value) over the UTF-8 bytes, value NFKC-normalised, stripped and upper-cased. For
clean ASCII values the DuckDB equivalent is ``left(sha256(salt || upper(trim(value))), 16)``.

Scanner: ``scan_text`` / ``scan_paths``; the exact patterns and false-positive guards are listed in
``_classify_token``'s docstring.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html as _html
import json
import math
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "MASK_KINDS", "PATTERN_KINDS", "UNSCANNED", "Finding", "UnscannableError",
    "mask_mobile", "mask_id_number", "mask_person_name", "mask_uscc", "mask_account",
    "mask_org_name",
    "mask_value", "mask_frame", "salted_hash", "scan_text", "scan_paths", "pdf_text_pages",
    "id_check_digit", "uscc_check_char", "luhn_valid", "is_valid_id_number", "is_valid_uscc",
]

MASK_KINDS: tuple[str, ...] = ("person_name", "org_name", "id_number", "uscc", "mobile", "account")
# Kinds the scanner finds by pattern; person_name / org_name are found only from known values.
PATTERN_KINDS: tuple[str, ...] = ("id_number", "uscc", "mobile", "account")
UNSCANNED = "unscanned"

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 澹台 轩辕 端木 独孤 南宫"
    " 万俟 闻人 呼延 申屠 太史 钟离 单于 赫连 东郭 西门 百里 濮阳 淳于 公冶 拓跋 司空 鲜于 闾丘"
    " 亓官 公羊 仲孙 太叔 左丘 谷梁 段干 梁丘 羊舌 微生 巫马 乐正 壤驷 夹谷 宰父 漆雕 南门".split()
)
# Organisation-form words that say what a name is, not whose it is; kept when masking org names.
_ORG_FORMS = "个体工商户|个体户|个人独资企业|个人独资|普通合伙|有限合伙|特殊普通合伙"
_ORG_SUFFIX = re.compile(rf"\((?:{_ORG_FORMS})\)$")
_ORG_PREFIX = re.compile(r"^(?:个体工商户|个体户)[:：]?")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: 31 characters, no I O S V Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


# --------------------------------------------------------------------------- check digits

def id_check_digit(body17: str) -> str:
    """GB 11643-1999 check character ('0'–'9' or 'X') for the first 17 digits of a resident ID."""
    if len(body17) != 17 or not body17.isascii() or not body17.isdigit():
        raise ValueError(f"expected 17 digits, got {body17!r}")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


def uscc_check_char(body17: str) -> str:
    """GB 32100-2015 check character for the first 17 characters of a unified social credit code."""
    if len(body17) != 17 or any(c not in USCC_CHARSET for c in body17):
        raise ValueError(f"expected 17 characters from {USCC_CHARSET}, got {body17!r}")
    pairs = zip(body17, _USCC_WEIGHTS, strict=True)
    remainder = sum(USCC_CHARSET.index(c) * w for c, w in pairs) % 31
    return USCC_CHARSET[(31 - remainder) % 31]


def luhn_valid(digits: str) -> bool:
    """True when a digit string passes the Luhn (ISO/IEC 7812) check used by bank cards."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _id_shaped(s: str) -> bool:
    # Region code starts 1–8 (mainland 1–6, 7 Taiwan, 8 HK/Macau/Taiwan permits);
    # digits 7–14 are a real date.
    return s[0] in "12345678" and 1900 <= int(s[6:10]) <= 2099 and _valid_date(
        int(s[6:10]), int(s[10:12]), int(s[12:14]))


def is_valid_id_number(value: str) -> bool:
    """True for an 18-character resident ID: plausible region, real birth date, valid check."""
    s = value.upper()
    return (len(s) == 18 and s[:17].isascii() and s[:17].isdigit() and _id_shaped(s)
            and id_check_digit(s[:17]) == s[17])


def is_valid_uscc(value: str) -> bool:
    """True for an 18-character unified social credit code with a valid GB 32100 check character.

    Also requires the structure: registration department not 0, organisation type 1–9 (91 企业,
    92 个体工商户, 12 事业单位, …) and a 6-digit region code starting 1–8.
    """
    return (len(value) == 18 and all(c in USCC_CHARSET for c in value) and value[0] != "0"
            and value[1] in "123456789" and value[2] in "12345678" and value[2:8].isdigit()
            and uscc_check_char(value[:17]) == value[17])


# --------------------------------------------------------------------------- masking

def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _to_text(value: object) -> str:
    """Scalar → normalised text; an integer-valued float (phone column read with NaN) loses '.0'."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return unicodedata.normalize("NFKC", str(value)).strip()


def _elementwise(scalar_rule: Callable[[str], str]) -> Callable:
    """Lift a rule on normalised text to scalars and Series, passing missing values through."""

    def apply(value):
        if isinstance(value, pd.Series):
            out = [v if _is_missing(v) else scalar_rule(_to_text(v)) for v in value.tolist()]
            return pd.Series(out, index=value.index, name=value.name, dtype="str")
        if _is_missing(value):
            return value
        return scalar_rule(_to_text(value))

    apply.__name__ = scalar_rule.__name__.lstrip("_")
    apply.__doc__ = scalar_rule.__doc__
    return apply


def _keep(s: str, head: int, tail: int) -> str:
    return s[:head] + "*" * (len(s) - head - tail) + (s[len(s) - tail:] if tail else "")


_PHONE_NOISE = re.compile(r"[\s\-()]")


def _mask_mobile(s: str) -> str:
    """Mask a phone number: 11-digit mobile → 138****5678 (see the module table for other forms)."""
    s = _PHONE_NOISE.sub("", s)
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if len(s) == 13 and s.startswith("86") and s[2] == "1":
        s = s[2:]
    n = len(s)
    if n >= 10:
        return _keep(s, 3, 4)
    if n >= 7:
        return _keep(s, 0, 2)
    return "*" * n


def _mask_id_number(s: str) -> str:
    """Mask an ID number: 18 → first 6 + 8 stars + last 4; 15 → first 6 + 6 stars + last 3."""
    s = re.sub(r"\s", "", s).upper()
    n = len(s)
    if n == 18:
        return _keep(s, 6, 4)
    if n == 15:
        return _keep(s, 6, 3)
    return _keep(s, 2, 2) if n >= 8 else "*" * n


def _mask_person_name(s: str) -> str:
    """Mask a person's name keeping the surname: 张三丰 → 张**, 欧阳娜娜 → 欧阳**."""
    if not s:
        return s
    if re.search(r"[A-Za-z·•]", s):
        # Transliterated or minority names (买买提·艾力, Zhang San): first character and separators.
        return s[0] + re.sub(r"[^\s·•.\-]", "*", s[1:])
    s = re.sub(r"\s", "", s)
    if len(s) == 1:
        return "*"
    surname = s[:2] if len(s) >= 3 and s[:2] in COMPOUND_SURNAMES else s[:1]
    return surname + "*" * (len(s) - len(surname))


def _mask_uscc(s: str) -> str:
    """Mask a unified social credit code: keep the first 8 (department, type, region)."""
    s = re.sub(r"[\s\-]", "", s).upper()
    n = len(s)
    if n == 18:
        return _keep(s, 8, 0)
    return _keep(s, 6, 0) if n >= 12 else "*" * n


def _mask_account(s: str) -> str:
    """Mask an account or card number to the fixed-width form ****1234."""
    s = re.sub(r"[\s\-]", "", s)
    return "****" + s[-4:] if len(s) >= 8 else "****"


def _mask_org_name(s: str) -> str:
    """Mask an enterprise / 个体工商户 name, hiding the 字号 (see the module table)."""
    prefix = suffix = ""
    if m := _ORG_SUFFIX.search(s):
        s, suffix = s[: m.start()], m.group(0)
    if m := _ORG_PREFIX.match(s):
        prefix, s = m.group(0), s[m.end():]
    n = len(s)
    if n >= 8:
        core = _keep(s, 2, 2)
    elif n >= 5:
        core = _keep(s, 1, 1)
    else:
        core = _mask_person_name(s)
    return prefix + core + suffix


mask_mobile = _elementwise(_mask_mobile)
mask_id_number = _elementwise(_mask_id_number)
mask_person_name = _elementwise(_mask_person_name)
mask_uscc = _elementwise(_mask_uscc)
mask_account = _elementwise(_mask_account)
mask_org_name = _elementwise(_mask_org_name)

_MASKERS: dict[str, Callable] = {
    "person_name": mask_person_name, "org_name": mask_org_name, "id_number": mask_id_number,
    "uscc": mask_uscc, "mobile": mask_mobile, "account": mask_account,
}


def _check_kind(kind: str, allowed: Collection[str] = MASK_KINDS) -> None:
    if kind not in allowed:
        raise InputError(f"unknown personal-data kind {kind!r}",
                         fix=f"use one of: {', '.join(allowed)}")


def mask_value(value, kind: str):
    """Mask a scalar or Series by its schema mask kind (one of MASK_KINDS)."""
    _check_kind(kind)
    return _MASKERS[kind](value)


def mask_frame(df: pd.DataFrame, table_or_mapping) -> pd.DataFrame:
    """A copy of df with every masked (C2) column present masked by its kind; others untouched.

    table_or_mapping: an analysis.schema.Table, a table name in the bundled schema, or
    {column: kind}. Columns it names that df lacks are skipped.
    """
    if isinstance(table_or_mapping, str):
        from .schema import load_schema

        schema = load_schema()
        if table_or_mapping not in schema.tables:
            raise InputError(f"unknown table {table_or_mapping!r}",
                             fix=f"use one of: {', '.join(schema.tables)}")
        table_or_mapping = schema.table(table_or_mapping)
    if isinstance(table_or_mapping, Mapping):
        kinds = dict(table_or_mapping)
    elif hasattr(table_or_mapping, "columns") and hasattr(table_or_mapping, "column_names"):
        kinds = {c.name: c.mask for c in table_or_mapping.columns if c.mask}
    else:
        raise InputError(f"cannot read mask kinds from {type(table_or_mapping).__name__}",
                         fix="pass a schema Table, a table name or a {column: kind} mapping")
    for kind in kinds.values():
        _check_kind(kind)
    masked = {c: mask_value(df[c], k) for c, k in kinds.items() if c in df.columns}
    return df.assign(**masked) if masked else df.copy()


def salted_hash(value, salt: str):
    """Join key for masked lists: first 16 hex digits of sha256(salt + normalised value).

    The value is NFKC-normalised, stripped and upper-cased first, so '…123x' and '…123X' join.
    salt: a secret of at least 8 characters kept out of every output (e.g. secrets.token_hex(16));
    without it the key space of a phone number is small enough to brute-force.
    """
    if not isinstance(salt, str) or len(salt) < 8:
        raise InputError("salted_hash needs a secret salt of at least 8 characters",
                         fix="set a random salt, e.g. secrets.token_hex(16), kept out of outputs")

    def rule(s: str) -> str:
        return hashlib.sha256((salt + s.upper()).encode("utf-8")).hexdigest()[:16]

    return _elementwise(rule)(value)


# --------------------------------------------------------------------------- scanner

@dataclass(frozen=True)
class Finding:
    """One unmasked personal value: where, what kind, and a masked excerpt (never the raw value).

    kind is a mask kind, or 'unscanned' when a file could not be read (excerpt says why).
    location: 'line 12', 'page 2, line 5', 'Sheet1!B3', 'cell 4 output 1 (text/html), line 3',
    '$.rows[0].name, line 1'.
    """

    path: Path | None
    kind: str
    excerpt: str
    location: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{where}{self.location}: {self.kind}: {self.excerpt}"


# Candidate tokens are maximal runs of ASCII letters and digits, so a number glued to a letter
# (hex hashes, 'p1234…' SVG ids, base64) is never read as a phone or ID.
_TOKEN = re.compile(r"[0-9A-Za-z]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_CARD_FIRST_DIGITS = "34569"  # MII 3 Amex/JCB, 4 Visa, 5 Mastercard, 6 UnionPay, 9 old domestic
_CONTEXT = 12
_AMOUNT_BEFORE = re.compile(r"(?:[¥$]|RMB|CNY)\s?$")
_AMOUNT_AFTER = re.compile(r"\s?[元万亿]")
_LONG_DIGITS = re.compile(r"[0-9]{11,}")


def _classify_token(tok: str, before: str, after: str) -> str | None:
    """Kind of personal data an ASCII-alnum token is, or None.

    before: up to five characters before the token; after: up to three after.

    Patterns and false-positive guards:
    - amounts: a number with a currency sign or unit beside it (¥ / RMB / CNY before, 元 / 万 / 亿
      after, one space allowed) is an amount, never a finding. An 11-digit integer amount of
      13–19 billion 元 written bare is indistinguishable from a mobile number and is reported.
    - decimals: a token right after 'digit.' (a fraction) or right before '.digit' (the integer
      part of an amount such as 123456789012.50) is never a finding; exception: a mobile number
      followed by exactly '.0' (a float-typed phone column) is.
    - mobile: 11 digits 1[3-9]xxxxxxxxx, optionally prefixed by 86 / 0086 in the same token, not
      ending in 0000 (round amounts such as 15000000000 元 from 万元 × 10,000).
    - id_number: 18 characters (17 digits + digit/X) whose first digit is 1–8, digits 7–14 a real
      date 1900–2099, and whose GB 11643 check character is valid. An ID-shaped token with a wrong
      check character is reported as nothing at all (not as USCC or card), so a typo'd or random
      ID-like number never alarms. 15 digits: first digit 1–8 and 19YYMMDD a real date (no check
      digit exists, so this is the weakest pattern).
    - uscc: 18 characters from the 31-character set, first not 0, second 1–9, characters 3–8
      digits starting 1–8 (行政区划), valid GB 32100 check character; upper case only. The second-
      character rule rejects date-prefixed serial numbers (20YY…).
    - ASCII-alnum boundaries: a candidate glued to a letter or digit (C13812345678, hex hashes,
      base64) is not one; so an ID written as 'ID110101…' is missed (documented limit).
    - account (cards): 16–19 digits, first digit 3/4/5/6/9 (card issuer ranges), Luhn-valid, not
      one repeated digit. The first-digit rule also excludes compact timestamps (YYYYMMDD…, which
      start 19/20), date-prefixed serial numbers, and epoch micro/nanoseconds (which start 1).
      Corporate settlement accounts (对公账号) carry no public check digit, so they cannot be told
      from other long numbers by pattern: pass them as known_values={'account': …}.
    """
    n = len(tok)
    if n < 11 or n > 19:
        return None
    if before[-1:] == "." and before[-2:-1].isdigit():
        return None
    if _AMOUNT_BEFORE.search(before) or _AMOUNT_AFTER.match(after):
        return None
    decimal_after = after[:1] == "." and after[1:2].isdigit()
    if tok.isdigit():
        if n in (11, 13, 15):
            core = tok[-11:]
            prefix = tok[:-11]
            # '…0000' is a round amount (万元 × 10,000), not a phone; 1 number in 10,000 is missed.
            round_amount = core.endswith("0000")
            if prefix in ("", "86", "0086") and _MOBILE.fullmatch(core) and not round_amount:
                float_zero = after[:2] == ".0" and not after[2:3].isdigit()
                return None if decimal_after and not float_zero else "mobile"
        if decimal_after:
            return None
        if n == 15:
            birth = (1900 + int(tok[6:8]), int(tok[8:10]), int(tok[10:12]))
            if tok[0] in "12345678" and _valid_date(*birth):
                return "id_number"
            return None
        if n == 18:
            if _id_shaped(tok):
                return "id_number" if id_check_digit(tok[:17]) == tok[17] else None
            if is_valid_uscc(tok):
                return "uscc"
        if n >= 16 and tok[0] in _CARD_FIRST_DIGITS and luhn_valid(tok) and len(set(tok)) > 1:
            return "account"
        return None
    if decimal_after or n != 18:
        return None
    if tok[:17].isdigit() and tok[17] in "Xx":
        if _id_shaped(tok):
            return "id_number" if id_check_digit(tok[:17]) == "X" else None
    if is_valid_uscc(tok):
        return "uscc"
    return None


_DATA_URI = re.compile(r"data:[A-Za-z0-9.+/-]+;base64,[A-Za-z0-9+/=\s]+")
_U_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape_u(m: re.Match) -> str:
    code = int(m.group(1), 16)
    return m.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)


def _prepare_markup(text: str) -> str:
    """Markup as a reader sees it: entities and \\uXXXX decoded, base64 images dropped.

    Images are not OCR'd; the blob is replaced by its newlines so line numbers still match the file.
    """
    text = _DATA_URI.sub(lambda m: "data:" + "\n" * m.group(0).count("\n"), text)
    text = _U_ESCAPE.sub(_unescape_u, text)
    return _html.unescape(text)


class _Detector:
    """Compiled patterns plus the caller's known names and values; scans text line by line."""

    def __init__(self, known_names: Iterable[str] | None,
                 known_values: Mapping[str, Iterable[str]] | None, kinds: Collection[str] | None):
        if kinds is not None:
            for k in kinds:
                _check_kind(k)
        self.kinds = set(MASK_KINDS if kinds is None else kinds)
        # literal → kind, for names (substring match) and known values (token or substring match)
        self.literals: dict[str, str] = {}
        for name in known_names or ():
            # A one-character 'name' would flag every occurrence of a common character.
            if not _is_missing(name) and len(norm := _to_text(name)) >= 2:
                self.literals.setdefault(norm, "person_name")
        for kind, values in (known_values or {}).items():
            _check_kind(kind)
            for v in values:
                if not _is_missing(v) and (norm := _to_text(v)):
                    self.literals.setdefault(norm, kind)
        self.literals = {v: k for v, k in self.literals.items() if k in self.kinds}
        self.alnum_tokens = {v: k for v, k in self.literals.items() if _TOKEN.fullmatch(v)}
        other = {v: k for v, k in self.literals.items() if v not in self.alnum_tokens}
        self.by_first: dict[str, list[str]] = {}
        for v in sorted(other, key=len, reverse=True):  # longest first: 张三丰 before 张三
            self.by_first.setdefault(v[0], []).append(v)
        self.other = other
        self.first_chars = (re.compile("[" + re.escape("".join(self.by_first)) + "]")
                            if self.by_first else None)

    def _spans(self, line: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        for m in _TOKEN.finditer(line):
            tok = m.group(0)
            kind = self.alnum_tokens.get(tok)
            if kind is None and 11 <= len(tok) <= 19:
                before, after = line[max(0, m.start() - 5): m.start()], line[m.end(): m.end() + 3]
                kind = _classify_token(tok, before, after)
                if kind not in self.kinds:
                    kind = None
            if kind:
                spans.append((m.start(), m.end(), kind))
        if self.first_chars is not None:
            taken = [(s, e) for s, e, _ in spans]
            pos = 0
            while (m := self.first_chars.search(line, pos)) is not None:
                i = m.start()
                hit = next((v for v in self.by_first[line[i]] if line.startswith(v, i)
                            and self._bounded(line, i, i + len(v))), None)
                if hit and not any(s < i + len(hit) and i < e for s, e in taken):
                    spans.append((i, i + len(hit), self.other[hit]))
                    pos = i + len(hit)
                else:
                    pos = i + 1
        return sorted(spans)

    @staticmethod
    def _bounded(line: str, start: int, end: int) -> bool:
        # A literal that begins / ends with an ASCII letter or digit must not be glued to another.
        def alnum(c: str) -> bool:
            return c.isascii() and c.isalnum()
        if alnum(line[start]) and start > 0 and alnum(line[start - 1]):
            return False
        return not (alnum(line[end - 1]) and end < len(line) and alnum(line[end]))

    def scan(self, text: str, path: Path | None, where: str = "") -> list[Finding]:
        """Findings in text; location is '<where>, line N' (or 'line N')."""
        findings: list[Finding] = []
        text = unicodedata.normalize("NFKC", text)
        for lineno, line in enumerate(text.split("\n"), start=1):
            if len(line) < 2:
                continue
            spans = self._spans(line)
            if not spans:
                continue
            # The excerpt's context is the line with every finding masked and any other long digit
            # run cut to its last 4, so no raw value of any kind is echoed.
            starts, pieces, last, length = [], [], 0, 0
            for s, e, kind in spans:
                pieces.append(_LONG_DIGITS.sub(lambda m: "****" + m.group(0)[-4:], line[last:s]))
                length += len(pieces[-1])
                masked = mask_value(line[s:e], kind)
                starts.append((length, masked, kind))
                pieces.append(masked)
                length += len(masked)
                last = e
            pieces.append(_LONG_DIGITS.sub(lambda m: "****" + m.group(0)[-4:], line[last:]))
            clean = "".join(pieces)
            location = f"{where}, line {lineno}" if where else f"line {lineno}"
            for start, masked, kind in starts:
                lo, hi = max(0, start - _CONTEXT), min(len(clean), start + len(masked) + _CONTEXT)
                excerpt = (("…" if lo else "") + clean[lo:hi].strip()
                           + ("…" if hi < len(clean) else ""))
                findings.append(Finding(path, kind, excerpt, location))
        return findings


def scan_text(text: str, *, known_names: Iterable[str] | None = None,
              known_values: Mapping[str, Iterable[str]] | None = None,
              kinds: Collection[str] | None = None) -> list[Finding]:
    """Unmasked personal data in a text (path None, location 'line N').

    known_names: full person names to look for (a masked '张**' never matches one; names shorter
    than 2 characters are ignored). Matched as substrings, longest first, so a 2-character name
    that is also a common word (高峰 in 高峰期) will be reported there too.
    known_values: {kind: raw values} found wherever they occur as a whole token, e.g. the bank's
    own account numbers, which have no check digit to find them by.
    kinds: restrict to these kinds (default all).
    """
    return _Detector(known_names, known_values, kinds).scan(text, None)


# ----------------------------------------------------------------- file readers

_TEXT_SUFFIXES = {".txt", ".log", ".md", ".markdown", ".typ", ".csv", ".tsv", ".yaml", ".yml",
                  ".tex", ".rst"}
_MARKUP_SUFFIXES = {".html", ".htm", ".xhtml", ".svg", ".xml"}
_WALK_SUFFIXES = _TEXT_SUFFIXES | _MARKUP_SUFFIXES | {".json", ".ipynb", ".pdf", ".xlsx", ".xlsm"}
_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules"}


class UnscannableError(Exception):
    """A file the scanner cannot read; scan_paths turns it into an 'unscanned' finding."""


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise UnscannableError("text encoding not recognised")
    return str(best)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise UnscannableError("binary file, not a supported format")
    return _decode(raw)


def _json_leaves(node, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{where} (key)", str(k)
            child = f"{where}.{k}" if re.fullmatch(r"\w+", str(k)) else f"{where}[{k!r}]"
            yield from _json_leaves(v, child)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_leaves(v, f"{where}[{i}]")
    elif isinstance(node, str):
        yield where, node
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield where, _to_text(node)


def _scan_json(path: Path, det: _Detector) -> list[Finding]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return det.scan(_prepare_markup(text), path)  # not valid JSON: read it as text
    out: list[Finding] = []
    for where, leaf in _json_leaves(data, "$"):
        out.extend(det.scan(leaf, path, where))
    return out


def _as_text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _scan_ipynb(path: Path, det: _Detector) -> list[Finding]:
    text = _read_text(path)
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        return det.scan(_prepare_markup(text), path)
    out: list[Finding] = []
    # Notebook metadata holds papermill parameters; scan it as JSON text.
    meta = json.dumps(nb.get("metadata", {}), ensure_ascii=False, indent=1)
    out += det.scan(meta, path, "metadata")
    for ci, cell in enumerate(nb.get("cells", []), start=1):
        out += det.scan(_as_text(cell.get("source", "")), path, f"cell {ci} source")
        if cell.get("metadata"):
            out += det.scan(json.dumps(cell["metadata"], ensure_ascii=False, indent=1), path,
                            f"cell {ci} metadata")
        for key in cell.get("attachments") or {}:  # file names only: the bodies are images
            out += det.scan(str(key), path, f"cell {ci} attachment")
        for oi, output in enumerate(cell.get("outputs", []) or [], start=1):
            where = f"cell {ci} output {oi}"
            if "text" in output:
                stream = output.get("name", "stream")
                out += det.scan(_as_text(output["text"]), path, f"{where} ({stream})")
            if output.get("output_type") == "error":
                err = "\n".join([str(output.get("ename", "")), str(output.get("evalue", ""))]
                                + [str(t) for t in output.get("traceback", [])])
                out += det.scan(re.sub(r"\x1b\[[0-9;]*m", "", err), path, f"{where} (error)")
            for mime, payload in (output.get("data") or {}).items():
                if mime.startswith("image/") and mime != "image/svg+xml":
                    continue  # base64 pixels: not OCR'd
                if not isinstance(payload, str | list):  # application/json and friends
                    payload = json.dumps(payload, ensure_ascii=False, indent=1)
                body = payload
                out += det.scan(_prepare_markup(_as_text(body)), path, f"{where} ({mime})")
    return out


def _cell_text(value) -> str | None:
    if value is None or isinstance(value, bool | _dt.date | _dt.time | _dt.timedelta):
        return None
    return _to_text(value)


def _scan_xlsx(path: Path, det: _Detector) -> list[Finding]:
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    try:
        wb = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a damaged or foreign file
        raise UnscannableError(f"openpyxl could not open the workbook: {exc}") from exc
    out: list[Finding] = []
    try:
        for ws in wb.worksheets:
            out += det.scan(ws.title, path, f"sheet name {ws.title!r}")
            for r, row in enumerate(ws.iter_rows(values_only=True), start=1):
                for c, value in enumerate(row, start=1):
                    text = _cell_text(value)
                    if text and len(text) >= 2:
                        cell = f"{ws.title}!{get_column_letter(c)}{r}"
                        out += [Finding(f.path, f.kind, f.excerpt,
                                        cell + (f", {f.location}" if "\n" in text else ""))
                                for f in det.scan(text, path)]
    finally:
        wb.close()
    return out


def pdf_text_pages(path: Path) -> list[str]:
    """Text of each page of a pdf, by pypdf if installed, else poppler's pdftotext.

    Raises UnscannableError when neither is available or extraction fails. Rendering tests can use
    this to check that a pdf carries real (not tofu) Chinese text.
    """
    try:
        import pypdf  # noqa: F401
    except ImportError:
        pypdf = None
    if pypdf is not None:
        try:
            pages = [page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages]
        except Exception as exc:  # pypdf raises many types for a damaged file
            raise UnscannableError(f"pypdf could not read the pdf: {exc}") from exc
    else:
        exe = shutil.which("pdftotext")
        if exe is None:
            raise UnscannableError(
                "pdf text could not be extracted: install pypdf or poppler-utils (pdftotext)")
        done = subprocess.run([exe, "-enc", "UTF-8", str(path), "-"], capture_output=True,
                              timeout=300)
        if done.returncode != 0:
            raise UnscannableError(
                f"pdftotext failed: {done.stderr.decode('utf-8', 'replace').strip()[:200]}")
        pages = done.stdout.decode("utf-8", "replace").split("\f")
        if len(pages) > 1 and not pages[-1].strip():
            pages = pages[:-1]  # pdftotext ends every page, the last included, with a form feed
    if not any(p.strip() for p in pages):
        # An image-only (scanned) pdf would otherwise pass with no findings.
        raise UnscannableError("the pdf has no extractable text (image-only?); check it by eye")
    return pages


def _scan_pdf(path: Path, det: _Detector) -> list[Finding]:
    out: list[Finding] = []
    for p, page in enumerate(pdf_text_pages(path), start=1):
        out += det.scan(page, path, f"page {p}")
    return out


def _scan_file(path: Path, det: _Detector) -> list[Finding]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            return _scan_pdf(path, det)
        if suffix in (".xlsx", ".xlsm"):
            return _scan_xlsx(path, det)
        if suffix == ".ipynb":
            return _scan_ipynb(path, det)
        if suffix == ".json":
            return _scan_json(path, det)
        if suffix in _MARKUP_SUFFIXES:
            return det.scan(_prepare_markup(_read_text(path)), path)
        if suffix in (".md", ".markdown"):
            return det.scan(_prepare_markup(_read_text(path)), path)
        # Listed text types, and any other file that decodes as text (never skipped silently).
        return det.scan(_read_text(path), path)
    except UnscannableError as exc:
        return [Finding(path, UNSCANNED, str(exc), "whole file")]
    except (OSError, subprocess.SubprocessError) as exc:
        return [Finding(path, UNSCANNED, f"could not read: {exc}", "whole file")]


def _files(paths: Iterable[Path | str]) -> Iterator[Path]:
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                for f in sorted(files):
                    if Path(f).suffix.lower() in _WALK_SUFFIXES:
                        yield Path(root) / f
        elif p.is_file():
            yield p
        else:
            raise InputError("path to scan does not exist", file=str(p), fix="check the path")


def scan_paths(paths: Iterable[Path | str] | Path | str, *,
               known_names: Iterable[str] | None = None,
               known_values: Mapping[str, Iterable[str]] | None = None,
               kinds: Collection[str] | None = None) -> list[Finding]:
    """Unmasked personal data in files; a directory is walked for the supported types.

    Reads html/htm/svg/xml, ipynb (sources, every output, metadata), json, csv/tsv, log/txt, md,
    typ, yaml, tex, pdf (pypdf, else pdftotext) and xlsx/xlsm (every cell of every sheet, and sheet
    names). A file given explicitly with another suffix is read as text if it decodes as text.
    A file that cannot be read (a pdf with no extractor, a binary file) gives a finding of kind
    'unscanned' instead of passing silently, and so does a pdf with no extractable text. In a
    directory walk, other suffixes (images, parquet, …) are not opened. Not scanned: pixels
    (images are never OCR'd, nor chart glyphs drawn as paths), xlsx comments, charts and cached
    formula results (formula text is scanned).
    known_names / known_values / kinds: as in scan_text.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    det = _Detector(known_names, known_values, kinds)
    out: list[Finding] = []
    for f in _files(paths):
        out += _scan_file(f, det)
    return out
