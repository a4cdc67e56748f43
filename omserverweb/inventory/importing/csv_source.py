"""CSV rows with a header line naming the columns."""

from __future__ import annotations

import csv
import io
from collections import Counter

from django.utils.translation import gettext_lazy as _

from omserverweb.inventory.importing.candidates import (
    TEXT_FIELDS,
    Candidate,
    SourceError,
    check_row_count,
)

COLUMNS = ("hostname", "app_category", *TEXT_FIELDS)
REQUIRED = ("hostname", "lan_ip")


def parse_csv(text: str) -> list[Candidate]:
    """One candidate per data row; empty cells leave an existing server's value alone."""
    reader = csv.reader(io.StringIO(text))
    try:
        columns = _header(next(reader, []))
        candidates = []
        for cells in reader:
            if any(cell.strip() for cell in cells):
                check_row_count(len(candidates) + 1)
                where = _("line %(line)d") % {"line": reader.line_num}
                candidates.append(_candidate(columns, cells, where))
    except csv.Error as exc:
        error = _("CSV line %(line)d: %(error)s") % {"line": reader.line_num, "error": exc}
        raise SourceError(error) from None
    return candidates


def _header(cells: list[str]) -> list[str]:
    columns = [cell.strip().lower() for cell in cells]
    unknown = [column for column in columns if column not in COLUMNS]
    if unknown:
        raise SourceError(
            _("Unknown CSV column(s): %(unknown)s. The columns are: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(COLUMNS)}
        )
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        raise SourceError(
            _("The first CSV line must name the columns, including %(missing)s.")
            % {"missing": ", ".join(missing)}
        )
    repeated = [column for column, count in Counter(columns).items() if count > 1]
    if repeated:
        error = _("CSV column(s) given twice: %(columns)s.") % {"columns": ", ".join(repeated)}
        raise SourceError(error)
    return columns


def _candidate(columns: list[str], cells: list[str], where: str) -> Candidate:
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=False)}
    candidate = Candidate(
        hostname=values.pop("hostname", ""),
        category=values.pop("app_category", ""),
        fields={name: value for name, value in values.items() if value},
        where=where,
    )
    if len(cells) != len(columns):
        candidate.error = _("Expected %(expected)d fields, found %(found)d.") % {
            "expected": len(columns),
            "found": len(cells),
        }
    return candidate
