"""Tables written by other tools: parquet from pandas, polars, Spark, DuckDB or Impala, and the text files a
spreadsheet saves (CSV, semicolon CSV, "Unicode Text").

Every tool stores the same table its own way: text in a parquet file may be plain, dictionary-encoded (pandas'
``category``, polars' ``Categorical``, Spark's and DuckDB's dictionary pages), ``large_string``, ``string_view`` or
UTF-8 ``binary``; a spreadsheet saves UTF-8 with or without a byte-order mark, UTF-16 (Excel's "Unicode Text", tab
separated), or the Windows code page, with commas, semicolons (locales whose decimal mark is a comma) or tabs. The
readers here turn each into one form -- pandas' ``str`` dtype, a decoded ``str`` -- so the callers check what a
column holds, never how it was stored. Errors are :class:`TableError`, one sentence naming the file.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.utils import file_damage

#: Byte-order marks, longest first (a UTF-32 LE mark begins with UTF-16 LE's).
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xef\xbb\xbf", "utf-8"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
#: Field separators a spreadsheet writes, in the order a tie is broken.
DELIMITERS = (",", "\t", ";", "|")
#: Magic numbers of spreadsheet workbooks, which are not text (.xlsx/.ods are ZIP files, .xls an OLE2 file).
_WORKBOOKS = ((b"PK\x03\x04", "a spreadsheet workbook (.xlsx or .ods)"),
              (b"\xd0\xcf\x11\xe0", "an Excel 97 workbook (.xls)"))


class TableError(ValueError):
    """A table file cannot be read; the message is one sentence naming the file and what is wrong."""


# ---------------------------------------------------------------------- parquet
def _plain_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` with text in its one plain form: dictionary-encoded values decoded, large and view strings as
    strings, and binary holding UTF-8 (as Impala and old Hive write text) as strings."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = column.type
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        try:
            return column.cast(pa.string())
        except pa.ArrowInvalid:  # not UTF-8: bytes stay bytes, and the caller's validation says it is not text
            return column
    return column


def read_parquet_table(path: str | os.PathLike) -> pd.DataFrame:
    """A parquet table as pandas, whichever tool wrote it: text columns in pandas' one string dtype (``str``, NaN
    for a missing value) whatever their Arrow encoding (plain, dictionary, large, view, UTF-8 binary); dates
    (Arrow ``date32``, Spark's ``DateType``) as ``datetime64``.

    Raises
    ------
    TableError
        One sentence naming the file when it cannot be read as a parquet table (missing, damaged, not parquet).
    """
    path = Path(path)
    try:
        table = pq.read_table(path)
        table = pa.table([_plain_column(c) for c in table.columns], names=table.column_names,
                         metadata=table.schema.metadata)
        frame = table.to_pandas(date_as_object=False)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        reason = file_damage(path) or str(exc).split(". ")[0].split(": ")[-1] or type(exc).__name__
        raise TableError(f"{path.name} in {path.parent} cannot be read as a parquet table ({reason}).") from None
    for column in frame.columns:
        dtype = frame[column].dtype
        # pandas' own metadata in the file brings back the dtype it was written from (an Arrow-backed or NA-valued
        # string): one dtype for all, so no reader meets pd.NA in one catalog and NaN in another.
        arrow = dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else None
        if (isinstance(dtype, pd.StringDtype) and dtype != "str") or (arrow is not None and (
                pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow))):
            frame[column] = frame[column].astype("str")
    return frame


def is_text_column(series: pd.Series) -> bool:
    """True when ``series`` holds text: a string dtype (or a categorical of strings) whose first 1000 values are
    ``str``."""
    # A categorical of strings is text too (pandas' category, another tool's dictionary-encoded column).
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.categories.to_series()
    if pd.api.types.is_string_dtype(series.dtype):
        return all(isinstance(v, str) for v in series.head(1000))
    return False


def dtype_name(series: pd.Series) -> str:
    """What ``series`` holds, for a sentence: its dtype, "categories of <dtype>", or bytes that are not text."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return f"categories of {series.cat.categories.dtype}"
    if any(isinstance(v, bytes) for v in series.head(1000)):
        return "bytes that are not UTF-8 text"
    return str(series.dtype)


# ---------------------------------------------------------------------- spreadsheet text
def decode_text(data: bytes, name: str | os.PathLike) -> str:
    """The text of a file a spreadsheet or an editor saved: UTF-8 (with or without a byte-order mark), UTF-16 or
    UTF-32 with a mark (Excel's "Unicode Text"), UTF-16 without one (recognised by its zero bytes), else the
    Windows code page 1252 that Excel's plain "CSV" uses in Western locales. The mark is removed.

    Raises
    ------
    TableError
        When ``data`` is a spreadsheet workbook rather than text, or holds bytes no such encoding reads; the
        sentence names ``name``.
    """
    for magic, what in _WORKBOOKS:
        if data.startswith(magic):
            raise TableError(f"{name} is {what}, not a text table; save it as CSV (UTF-8) or Unicode Text.")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise TableError(f"{name} starts as {encoding} text but byte {exc.start + len(bom)} is not "
                                 f"{encoding}; save it again as CSV (UTF-8).") from None
    if len(data) >= 4 and data.count(0) >= len(data) // 4:
        # No mark, but zero bytes in every other position: UTF-16 (Latin text's high bytes are zero).
        encoding = "utf-16-le" if data[1::2].count(0) >= data[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            raise TableError(f"{name} holds zero bytes and is neither UTF-8 nor UTF-16 text; save it again as "
                             f"CSV (UTF-8).") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # reads any byte: the five bytes cp1252 leaves undefined


@dataclass(frozen=True)
class TextTable:
    """A text table's rows: ``columns`` (the header's names, stripped and lower-cased), ``rows`` (one dict of
    column -> stripped cell per non-blank row) and ``line_numbers`` (each row's line in the file as a spreadsheet
    numbers it: the header is line 1), and the ``delimiter`` found."""

    columns: list[str]
    rows: list[dict[str, str]]
    line_numbers: list[int]
    delimiter: str


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of a tie: a comma
    return best if counts[best] else ","


def read_text_table(path: str | os.PathLike) -> TextTable:
    """Read a CSV or tab-separated file as a spreadsheet saves it (:func:`decode_text`'s encodings; comma,
    tab, semicolon or bar separated, found from the header line; any line endings). Blank rows (a spreadsheet's
    trailing ``,,,``) are left out; column names are matched without case or surrounding spaces.

    Raises
    ------
    TableError
        One sentence naming the file: it cannot be read, is a workbook, is empty, or is not valid CSV (with
        the line).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"The file {path} cannot be read ({exc.strerror or exc}).") from None
    text = decode_text(data, path)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise TableError(f"The file {path} is empty.")
    delimiter = _delimiter(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns, rows, numbers = None, [], []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = [cell.strip().lstrip("\ufeff").strip().lower() for cell in cells]
                continue
            rows.append({column: (cells[k].strip() if k < len(cells) else "")
                         for k, column in enumerate(columns) if column})
            numbers.append(reader.line_num)
    except csv.Error as exc:
        raise TableError(f"The file {path} is not valid CSV at line {reader.line_num} ({exc}).") from None
    return TextTable(columns or [], rows, numbers, delimiter)
