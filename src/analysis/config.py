"""engagement.yaml: the workspace's parameters, validated strictly (an unknown key or a wrong type is an error)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError

Language = Literal["zh", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bank(_Strict):
    name_zh: str
    name_en: str
    logo: str | None = None

    def name(self, language: Language) -> str:
        return self.name_zh if language == "zh" else self.name_en


class IngestSettings(_Strict):
    encodings: dict[str, str] = {}
    # "yuan" / "10k_yuan" are ASCII aliases of 元 / 万元 (so English instructions stay English).
    units: dict[str, Literal["元", "万元", "yuan", "10k_yuan"]] = {}
    on_bad_rows: Literal["stop", "quarantine"] = "stop"
    column_map: dict[str, dict[str, str]] = {}


class DataAssessmentParams(_Strict):
    lpr_1y: float = 0.0365


class TagDesignParams(_Strict):
    target_products: list[str] = ["LOAN_OP", "LOAN_TAX", "LOAN_MORT"]
    target_window_months: int = Field(3, ge=1, le=12)
    psi_months: int = Field(6, ge=2, le=24)


class FtpAssumption(_Strict):
    deposit_ftp: float = 0.024
    loan_ftp: float = 0.030


class ValueTierParams(_Strict):
    quantile: float = Field(0.8, gt=0.5, lt=1.0)
    window_months: int = Field(12, ge=3, le=24)
    ftp: FtpAssumption = FtpAssumption()
    pricing_product: str = "LOAN_OP"


class OpportunityParams(_Strict):
    outcome_window_months: int = Field(3, ge=1, le=12)
    fdr_q: float = Field(0.10, gt=0, lt=1)
    min_lift: float = Field(1.2, ge=1.0)
    min_triggers: int = Field(30, ge=1)
    backtest_months: int = Field(12, ge=3, le=24)
    rm_capacity_per_month: int = Field(40, ge=1)
    contacts_per_customer: int = Field(1, ge=1)
    # The internal RM variant carries full names and mobiles; it is written only when asked for,
    # so a default run leaves no unmasked personal data anywhere in the workspace's outputs.
    internal_lists: bool = False


class PilotParams(_Strict):
    pilot_id: str = "P2022Q4"
    alpha: float = Field(0.05, gt=0, lt=0.5)
    window_start: str = "2022-10"
    window_end: str = "2022-12"
    pre_start: str = "2022-07"
    pre_end: str = "2022-09"


class StageParams(_Strict):
    data_assessment: DataAssessmentParams = DataAssessmentParams()
    tag_design: TagDesignParams = TagDesignParams()
    value_tiers: ValueTierParams = ValueTierParams()
    opportunities: OpportunityParams = OpportunityParams()
    pilot: PilotParams = PilotParams()


class SyntheticSettings(_Strict):
    customers: int = Field(10_000, ge=200)
    seed: int = 20221231
    txn_per_active_month: int = Field(15, ge=0)


class SparkSettings(_Strict):
    """Where `engine: spark` runs and what it reads (ignored with engine: duckdb)."""

    # "local[2]" runs in-process; a cluster is "yarn", "spark://host:7077" or "k8s://…".
    master: str = "local[2]"
    # Read the warehouse tables from this Hive / Spark catalogue database instead of the
    # workspace's DuckDB warehouse (table and column names as in data_templates/schema.yaml).
    database: str | None = None
    shuffle_partitions: int = Field(8, ge=1)
    conf: dict[str, str] = {}


class Engagement(_Strict):
    bank: Bank
    as_of: str
    language: Language = "zh"
    seed: int = 20221231
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkSettings = SparkSettings()
    ingest: IngestSettings = IngestSettings()
    stages: StageParams = StageParams()
    synthetic: SyntheticSettings | None = None

    @field_validator("as_of", mode="before")
    @classmethod
    def _month(cls, v):
        s = str(v)
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", s):
            raise ValueError(f"as_of must be a month written YYYY-MM (quote it in YAML), got {v!r}")
        return s


def load_engagement(path: Path) -> Engagement:
    """Read engagement.yaml safely and validate it; errors name the key and the fix."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise InputError("engagement.yaml not found", file=str(path),
                         fix="run `playbook init PATH --bank NAME` to create a workspace") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(f"engagement.yaml is not valid YAML: {getattr(exc, 'problem', exc)}",
                         file=str(path), row=None if line is None else line + 1,
                         fix="correct the YAML syntax at that line") from None
    try:
        return Engagement.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            msg, fix = f"unknown key '{key}'", f"remove '{key}' or correct its spelling"
        elif err["type"] == "missing":
            msg, fix = f"missing key '{key}'", f"add '{key}' to engagement.yaml"
        else:
            msg, fix = f"invalid value for '{key}': {err['msg']}", f"correct '{key}'"
        raise InputError(msg, file=str(path), column=key, fix=fix) from None


def dump_engagement(cfg: Engagement, path: Path) -> None:
    data = cfg.model_dump(mode="json", exclude_none=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# Engagement parameters. Validated strictly: unknown keys and wrong types are errors.\n")
        yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)
