"""The bank extract contract (data_templates/schema.yaml) as validated objects."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from .resources import data_templates_dir

ColumnType = Literal["string", "integer", "decimal", "date", "month", "boolean", "category"]
Stage = Literal["tags", "value", "pricing", "events", "pilot"]
MaskKind = Literal["person_name", "org_name", "id_number", "uscc", "mobile", "account"]


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: ColumnType
    unit: Literal["元", "万元", "rate", "count"] | None = None
    required: bool = False
    key: Literal["primary"] | None = None
    references: str | None = None
    pii: Literal["C1", "C2", "C3"] | None = None
    mask: MaskKind | None = None
    values: list[str] | None = None
    used_by: list[Stage] = []
    label_zh: str
    label_en: str
    description: str | None = None

    @field_validator("references")
    @classmethod
    def _ref_shape(cls, v: str | None) -> str | None:
        if v is not None and v.count(".") != 1:
            raise ValueError(f"references must be table.column, got {v!r}")
        return v

    @property
    def is_amount(self) -> bool:
        return self.unit in ("元", "万元")

    @property
    def sql_type(self) -> str:
        return {"string": "VARCHAR", "category": "VARCHAR", "integer": "BIGINT",
                "decimal": "DOUBLE", "date": "DATE", "month": "DATE", "boolean": "BOOLEAN"}[self.type]


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    label_zh: str
    label_en: str
    required: bool
    description: str
    columns: list[Column]

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.key == "primary"]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}.{name}")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    tables: dict[str, Table]

    def model_post_init(self, __context) -> None:
        for name, table in self.tables.items():
            table.name = name
        for table in self.tables.values():
            for col in table.columns:
                if col.references:
                    t, c = col.references.split(".")
                    if t not in self.tables or c not in self.tables[t].column_names:
                        raise ValueError(f"{table.name}.{col.name} references unknown {col.references}")
                if col.pii == "C2" and col.mask is None:
                    raise ValueError(f"{table.name}.{col.name} is C2 personal data but declares no mask")

    def table(self, name: str) -> Table:
        return self.tables[name]

    def pii_columns(self) -> dict[str, dict[str, str]]:
        """table → {column: mask kind} for every masked column."""
        return {t.name: {c.name: c.mask for c in t.columns if c.mask}
                for t in self.tables.values() if any(c.mask for c in t.columns)}


def schema_path() -> Path:
    return data_templates_dir() / "schema.yaml"


@lru_cache(maxsize=4)
def load_schema(path: str | None = None) -> Schema:
    """Load and validate the extract schema (cached; the file is read-only at run time)."""
    p = Path(path) if path else schema_path()
    with open(p, encoding="utf-8") as fh:
        return Schema.model_validate(yaml.safe_load(fh))
