"""Reading a bank's extract files as delivered: encoding, delimiter, header, and Excel to text.

The ingest (analysis.ingest) does the heavy lifting in DuckDB; this module only makes every
text-like input something DuckDB can read natively: UTF-8 text with a known delimiter. DuckDB 2.0
reads only UTF-8 / UTF-16 / Latin-1 without downloading an extension, so GBK-family files are
transcoded to a UTF-8 working copy in streaming chunks (never loaded whole into memory).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

CHUNK_BYTES = 8 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
DELIMITER_CANDIDATES = (",", "\t", "|", ";")

# Every GBK-family name a detector or a user may give; gb18030 decodes all of them (superset).
GBK_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "ms936", "hz", "gb_2312_80", "euc_cn", "x_mac_simp_chinese"}
# Other CJK codecs a detector confuses GBK with on short samples; in a mainland bank's extract a
# file that decodes strictly as gb18030 is far more likely GBK than Big5 / Shift-JIS / EUC-KR.
CJK_CONFUSABLE = {"big5", "big5hkscs", "cp950", "euc_jp", "shift_jis", "cp932", "euc_kr", "cp949",
                  "iso2022_jp", "johab", "euc_jis_2004", "shift_jis_2004", "euc_jisx0213"}

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class PreparedText:
    """A delimited UTF-8 file DuckDB can read, standing for one delivered file."""

    path: Path                 # what DuckDB reads: the original or a UTF-8 working copy
    encoding: str              # encoding of the delivered file (canonical codec name)
    delimiter: str
    header: list[str]          # the delivered header, as written (BOM stripped)
    sha256: str                # of the delivered file's bytes
    row_number_column: bool = False  # True when the first column carries the source row number
    encoding_note: str | None = None
    notes: list[str] = field(default_factory=list)  # conversions made while reading (for the report)
    warnings: list[str] = field(default_factory=list)  # loaded, but a person should look (no values)


def canonical_encoding(name: str) -> str:
    """Python codec name for a declared or detected encoding; any GBK-family name → gb18030."""
    try:
        info = codecs.lookup(name.strip())
    except LookupError as exc:
        raise InputError(
            f"unknown encoding {name!r}",
            fix="declare one of utf-8, gb18030 (covers GBK / GB2312), utf-16 in engagement.yaml "
                "ingest.encodings, or remove the declaration to auto-detect",
        ) from exc
    codec = info.name.replace("-", "_")
    if codec in GBK_FAMILY:
        return "gb18030"
    if codec == "utf_8":
        return "utf-8"
    if codec == "utf_8_sig":
        return "utf-8-sig"
    return info.name


def _bom_encoding(head: bytes) -> str | None:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    return None


def _line_of_decode_error(path: Path, encoding: str) -> int | None:
    """1-based line number of the first line that does not decode (slow path, errors only)."""
    if encoding in ("utf-16", "utf-32"):
        return None  # newline bytes are not line boundaries in these encodings
    dec = codecs.getincrementaldecoder(encoding)("strict")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                dec.decode(raw)
            except UnicodeDecodeError:
                return lineno
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return lineno  # truncated multibyte sequence at the end of the file
    return None


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(sample)
        return True
    except UnicodeDecodeError:
        return False


def _decodes_but_last(path: Path, encoding: str) -> bool:
    """True when every byte decodes except an incomplete character at the very end."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
                dec.decode(chunk)
    except UnicodeDecodeError:
        return False
    return True


def _sample(path: Path) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(SAMPLE_BYTES)
        more = fh.read(1)
    if more:
        # cut at a line end so a multibyte character is never split by the sample boundary
        cut = data.rfind(b"\n")
        if cut > 0:
            data = data[: cut + 1]
    return data


def guess_encoding(path: Path) -> tuple[str, str]:
    """Encoding of a text file from a sample: (codec, how it was decided).

    BOM first; then strict UTF-8; then charset-normalizer, preferring gb18030 for any GBK-family
    or CJK-confusable guess that gb18030 decodes strictly. The whole file is verified later.
    """
    sample = _sample(path)
    bom = _bom_encoding(sample[:4])
    if bom:
        return bom, "byte-order mark"
    if _decodes(sample, "utf-8"):
        return "utf-8", "strict utf-8 decode of a sample"
    from charset_normalizer import from_bytes  # imported lazily: only non-UTF-8 files need it

    best = from_bytes(sample).best()
    guess = best.encoding if best is not None else None
    if guess is None or guess in GBK_FAMILY or guess in CJK_CONFUSABLE:
        if _decodes(sample, "gb18030"):
            return "gb18030", f"charset-normalizer guessed {guess or 'nothing'}; strict gb18030 decode"
    mixed = _mixed_encoding_line(sample)
    if mixed is not None:
        line, first_kind, other_kind = mixed
        raise InputError(f"the file mixes encodings: it starts in {first_kind} but line {line} is "
                         f"{other_kind}", file=path.name, row=line,
                         fix="re-export the whole file in one encoding (UTF-8 or GBK); do not "
                             "paste rows from files saved in another encoding")
    # A Chinese bank's extract is UTF-8, GBK-family or UTF-16/32. A single-byte code page
    # (Cyrillic, Latin-1, …) "decodes" any bytes and would load nonsense without an error.
    if guess is not None and guess.startswith(("utf_16", "utf_32")) and _decodes(sample, guess):
        return canonical_encoding(guess), f"charset-normalizer ({guess})"
    raise InputError(
        "cannot tell the file's text encoding",
        file=path.name,
        fix="declare the encoding (e.g. gb18030 or utf-8) for this file in engagement.yaml "
            "ingest.encodings, or re-export the file as UTF-8",
    )


def _line_kind(raw: bytes) -> str:
    if raw.isascii():
        return "ascii"
    if _decodes(raw, "utf-8"):
        return "UTF-8"
    if _decodes(raw, "gb18030"):
        return "GBK"
    return "neither"


def _mixed_encoding_line(sample: bytes) -> tuple[int, str, str] | None:
    """(1-based line, first encoding, other encoding) where a UTF-8 / GBK file switches encoding."""
    first = None
    for lineno, raw in enumerate(sample.split(b"\n"), start=1):
        kind = _line_kind(raw)
        if kind in ("ascii", "neither"):
            continue
        if first is None:
            first = kind
        elif kind != first:
            return lineno, first, kind
    return None


def mojibake_kind(text: str) -> str | None:
    """How a text value was garbled, or None: 'replacement characters' (U+FFFD from an earlier
    lossy decode), 'UTF-8 read as GBK' or 'UTF-8 read as Latin-1' (mojibake that reverses)."""
    if text.isascii():
        return None
    if "\ufffd" in text:
        return "replacement characters (\ufffd)"
    for wrong, label in (("gb18030", "UTF-8 read as GBK"), ("cp1252", "UTF-8 read as Latin-1"),
                         ("latin-1", "UTF-8 read as Latin-1")):
        try:
            fixed = text.encode(wrong).decode("utf-8")
        except UnicodeError:
            continue
        # the reversed text is shorter and Chinese: the bytes were UTF-8 Chinese all along
        if len(fixed) < len(text) and sum("\u4e00" <= ch <= "\u9fff" for ch in fixed) >= 2:
            return label
    return None


MOJIBAKE_SAMPLE_ROWS = 20000


def mojibake_warnings(rows, header: list[str], first_row: int = 2, limit: int = MOJIBAKE_SAMPLE_ROWS) -> list[str]:
    """Warnings naming columns and rows whose text looks garbled, over the first ``limit`` rows.

    ``rows`` yields lists of cells; row numbers start at ``first_row`` unless a row is a
    (row number, cells) pair. Values are never quoted (they may be personal data).
    """
    found: dict[tuple[str, str], list[int]] = {}
    for n, row in enumerate(rows):
        if n >= limit:
            break
        rownum, cells = row if isinstance(row, tuple) else (first_row + n, row)
        for j, cell in enumerate(cells):
            if cell and not cell.isascii():
                kind = mojibake_kind(cell)
                if kind:
                    column = header[j] if j < len(header) else f"column {j + 1}"
                    found.setdefault((column, kind), []).append(rownum)
    out = []
    for (column, kind), rownums in found.items():
        shown = ", ".join(map(str, rownums[:5])) + (f" and {len(rownums) - 5} more" if len(rownums) > 5 else "")
        out.append(f"{column}: text looks garbled ({kind}) in row {shown}; loaded as delivered — "
                   "re-export the file from the source system in one encoding (UTF-8 or GBK)")
    return out


def _decode_error(path: Path, encoding: str, declared: bool) -> InputError:
    line = _line_of_decode_error(path, encoding)
    if declared:
        try:
            other, _ = guess_encoding(path)
        except InputError:
            other = None
        if other and other not in (encoding, "utf-8") and not other.startswith("utf-8"):
            hint = (f"the file is not {encoding}; declare {other} in engagement.yaml "
                    "ingest.encodings or remove the declaration to auto-detect")
        else:
            hint = (f"the file is not {encoding}; declare its real encoding (gb18030 for GBK files) "
                    "in engagement.yaml ingest.encodings or remove the declaration to auto-detect")
    else:
        hint = ("the file mixes encodings; re-export it in one encoding (UTF-8 or GBK), or declare "
                "it in engagement.yaml ingest.encodings")
    return InputError(f"the file does not decode as {encoding}", file=path.name, row=line, fix=hint)


def _read_header(first_line: str) -> tuple[str, list[str]]:
    """(delimiter, column names) from the header line."""
    line = first_line.lstrip("\ufeff").rstrip("\r\n")
    delimiter = max(DELIMITER_CANDIDATES, key=line.count)
    if line.count(delimiter) == 0:
        delimiter = ","
    header = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
    return delimiter, [h.strip().lstrip("\ufeff") for h in header]


def prepare_text(path: Path, declared_encoding: str | None, workdir: Path) -> PreparedText:
    """Check the whole file decodes, hash it, and give DuckDB a UTF-8 path with the delimiter.

    UTF-8 files are read in place (one streaming pass verifies and hashes them); any other
    encoding is transcoded to a UTF-8 copy in ``workdir`` in the same pass.
    """
    if path.stat().st_size == 0:
        raise InputError("the file is empty (no header row)", file=path.name,
                         fix="re-export the table with its header row — see data_templates/templates/")
    if declared_encoding:
        encoding = canonical_encoding(declared_encoding)
        note = "declared"
        sample = _sample(path)
        bom = _bom_encoding(sample[:4])
        if encoding == "utf-8" and bom == "utf-8-sig":
            encoding = "utf-8-sig"
        if encoding == "gb18030" and (bom == "utf-8-sig" or (not sample.isascii() and _decodes(sample, "utf-8"))):
            # UTF-8 Chinese often decodes "successfully" as GBK into nonsense; refuse, do not guess
            raise InputError("the file is declared gb18030/GBK but is UTF-8", file=path.name,
                             fix="declare utf-8 in engagement.yaml ingest.encodings, or remove the "
                                 "declaration to auto-detect")
    else:
        encoding, note = guess_encoding(path)

    # Old Mac / some mainframe exports end lines with CR alone; DuckDB and csv need LF, so such a
    # file is rewritten to a working copy with LF (a CR inside a quoted value becomes LF too).
    head = _sample(path)
    cr_only = b"\r" in head and b"\n" not in head
    digest = hashlib.sha256()
    in_place = encoding in ("utf-8", "utf-8-sig") and not cr_only
    out_path = path if in_place else workdir / (path.name + ".utf8.csv")
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    head_text = ""
    out = None if in_place else open(out_path, "w", encoding="utf-8", newline="")
    try:
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(CHUNK_BYTES)
                final = not chunk
                digest.update(chunk)
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError:
                    if final and encoding.startswith("utf-8") and _decodes_but_last(path, encoding):
                        raise InputError("the file ends in the middle of a character: it looks "
                                         "truncated (cut during export or copy)", file=path.name,
                                         row=_line_of_decode_error(path, encoding),
                                         fix="copy or export the file again and check its size "
                                             "against the source system's") from None
                    if not declared_encoding and encoding == "utf-8":
                        # the sample was UTF-8 but a later part is not: try GBK on the whole file
                        if out is not None:
                            out.close()
                        try:
                            prepared = prepare_text(path, "gb18030", workdir)
                        except InputError:
                            raise _decode_error(path, "utf-8", declared=False) from None
                        prepared.encoding_note = "utf-8 sample, but the body decodes only as gb18030"
                        return prepared
                    raise _decode_error(path, encoding, declared=bool(declared_encoding)) from None
                if cr_only:
                    text = text.replace("\r", "\n")
                if len(head_text) < SAMPLE_BYTES:
                    head_text += text[:SAMPLE_BYTES]
                if out is not None:
                    out.write(text)
                if final:
                    break
    finally:
        if out is not None:
            out.close()
    first_line, _, body = head_text.partition("\n")
    delimiter, header = _read_header(first_line)
    if len(head_text) >= SAMPLE_BYTES:
        body = body[: body.rfind("\n") + 1]  # a cut last line would be misread
    try:
        rows = list(csv.reader(io.StringIO(body), delimiter=delimiter, quotechar='"'))
    except csv.Error:
        rows = []  # a malformed sample: DuckDB's parse reports the row later
    return PreparedText(path=out_path, encoding=encoding, delimiter=delimiter, header=header,
                        sha256=digest.hexdigest(), encoding_note=note,
                        notes=["CR-only line endings read as line breaks"] if cr_only else [],
                        warnings=mojibake_warnings(rows, header))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cell_text(value: object) -> str:
    """An Excel cell as the text a CSV export would carry (dates ISO, whole numbers without .0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def normalise_name(name: str) -> str:
    """Header / file-stem key: NFKC (full-width → half-width), no whitespace or BOM, lower case."""
    text = unicodedata.normalize("NFKC", str(name)).replace("\ufeff", "")
    return "".join(text.split()).lower()


HEADER_SCAN_ROWS = 20  # title / note rows above the header seen in bank exports fit well within this


def _header_score(cells: list[str], expected: set[str]) -> int:
    return sum(1 for c in cells if c.strip() and normalise_name(c) in expected)


def _find_header(rows: list[list[str]], expected: set[str]) -> tuple[int, int]:
    """(index into rows, score) of the row that names most template columns; (-1, 0) if none."""
    best, best_score = -1, 0
    for i, cells in enumerate(rows):
        score = _header_score(cells, expected)
        if score > best_score:
            best, best_score = i, score
    return best, best_score


def prepare_xlsx(path: Path, workdir: Path, sheet_names: tuple[str, ...] = (),
                 expected_headers: tuple[str, ...] = ()) -> PreparedText:
    """Write the extract's sheet to a UTF-8 CSV whose first column is the Excel row number.

    Sheet: the one named like the table (``sheet_names``); else the sheet whose rows name most
    template columns (``expected_headers``: column names and labels); else the first sheet.
    Header: within the first rows, the row naming most template columns (title rows and a merged
    group-header row above it are skipped; a header cell left empty by a vertical merge takes the
    value above it); without ``expected_headers`` or a match, the first non-blank row. Blank rows
    are skipped but the row numbers of the others stay those Excel shows.
    """
    from openpyxl import load_workbook  # lazily: only xlsx inputs need it

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged / wrong file
        raise InputError(f"cannot open the workbook ({type(exc).__name__})", file=path.name,
                         fix="open it in Excel and save it again as .xlsx, or export the sheet as csv") from exc
    notes: list[str] = []
    try:
        wanted = {normalise_name(s) for s in sheet_names}
        expected = {normalise_name(h) for h in expected_headers if h}
        named = next((wb[s] for s in wb.sheetnames if normalise_name(s) in wanted), None)
        heads = {}
        for ws in ([named] if named is not None else wb.worksheets):
            rows = [[_cell_text(v) for v in row]
                    for row in ws.iter_rows(max_row=HEADER_SCAN_ROWS, values_only=True)]
            heads[ws.title] = (ws, rows, *_find_header(rows, expected))
        if named is not None:
            ws, head_rows, at, _ = heads[named.title]
        else:
            best = max(heads.values(), key=lambda h: h[3])  # max keeps the first sheet on ties
            ws, head_rows, at, score = best if best[3] > 0 else next(iter(heads.values()))
            if len(wb.worksheets) > 1:
                others = ", ".join(repr(t) for t in wb.sheetnames if t != ws.title)
                notes.append(f"sheet {ws.title!r} read (it names the most template columns); "
                             f"other sheets ignored: {others}")
        if at < 0:  # no template column named anywhere: the first non-blank row is the header
            at = next((i for i, cells in enumerate(head_rows) if any(c.strip() for c in cells)), -1)
            if at < 0:
                raise InputError("the workbook's sheet is empty" if not head_rows else
                                 "no header row in the sheet's first rows", file=path.name,
                                 fix="put the column names in row 1 and the data below — see "
                                     "data_templates/templates/")
        header_cells = list(head_rows[at])
        if at > 0:
            above = head_rows[at - 1]
            # a header merged down two rows is written only in the upper cell
            header_cells = [c if c.strip() else (above[j] if j < len(above) else "")
                            for j, c in enumerate(header_cells)]
            skipped = [i + 1 for i in range(at) if any(c.strip() for c in head_rows[i])]
            if skipped:
                notes.append(f"{len(skipped)} title / group-header row(s) above the header "
                             f"(row {', '.join(map(str, skipped))}) skipped")
        while header_cells and not header_cells[-1].strip():
            header_cells.pop()
        header = [c.strip() for c in header_cells]
        header_row = at + 1
        out_path = workdir / (path.name + ".csv")
        sampled: list[tuple[int, list[str]]] = []
        with open(out_path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            writer.writerow(["__source_row", *header])
            for rownum, row in enumerate(ws.iter_rows(min_row=header_row + 1, values_only=True),
                                         start=header_row + 1):
                cells = [_cell_text(v) for v in row]
                if not any(c.strip() for c in cells):
                    continue
                cells = (cells + [""] * len(header))[: len(header)]
                writer.writerow([rownum, *cells])
                if len(sampled) < MOJIBAKE_SAMPLE_ROWS:
                    sampled.append((rownum, cells))
    finally:
        wb.close()
    return PreparedText(path=out_path, encoding="xlsx", delimiter=",", header=header,
                        sha256=file_sha256(path), row_number_column=True, notes=notes,
                        warnings=mojibake_warnings(sampled, header))


__all__ = ["PreparedText", "prepare_text", "prepare_xlsx", "guess_encoding", "canonical_encoding",
           "normalise_name", "file_sha256"]
