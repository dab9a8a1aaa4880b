"""Calendar arithmetic on integer day numbers (days since 1970-01-01), vectorised with numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.errors import InputError


def day(text: str) -> int:
    """'YYYY-MM-DD' → day number."""
    return int(np.datetime64(text, "D").astype(np.int64))


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day number."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def add_months(days: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Same day-of-month k months later (clamped to the month's last day)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + np.asarray(k, dtype=np.int64)
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(dom, length - 1)


def iso(days: np.ndarray) -> np.ndarray:
    """Day numbers → 'YYYY-MM-DD' strings."""
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]"))


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    return np.strings.replace(iso(days), "-", "")


@dataclass(frozen=True)
class Calendar:
    """The extract's months: labels, first and last day numbers, days in month."""

    labels: np.ndarray        # 'YYYY-MM'
    first: np.ndarray         # day numbers
    last: np.ndarray
    ndays: np.ndarray
    month0: int               # months since 1970-01 of the first month

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def start(self) -> int:
        return int(self.first[0])

    @property
    def end(self) -> int:
        return int(self.last[-1])

    def index_of_day(self, days: np.ndarray) -> np.ndarray:
        """Month index within the window (may be < 0 or ≥ n)."""
        return month_index(days) - self.month0


def make_calendar(end_month: str, months: int) -> Calendar:
    try:
        end = np.datetime64(end_month, "M")
    except ValueError as exc:
        raise InputError(f"end_month {end_month!r} is not a month", column="end_month",
                         fix="write it as YYYY-MM, e.g. 2022-12") from exc
    if months < 7:
        raise InputError(f"months={months} is too short", column="months",
                         fix="generate at least 7 months (events look back up to 6)")
    ms = end - np.arange(months - 1, -1, -1)
    first = ms.astype("datetime64[D]").astype(np.int64)
    last = (ms + 1).astype("datetime64[D]").astype(np.int64) - 1
    return Calendar(labels=np.datetime_as_string(ms), first=first, last=last, ndays=last - first + 1,
                    month0=int(ms[0].astype(np.int64)))
