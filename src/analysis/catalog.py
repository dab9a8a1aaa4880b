"""The engagement's catalogues (tags, events, tiers, pricing): YAML, loaded safely and validated strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError
from .resources import catalog_dir

TagCategory = Literal["基础属性", "经营行为", "资金流", "价值", "风险", "产品持有", "生命周期", "外部数据"]
EventCategory = Literal["acquisition", "activation", "cross_sell", "up_sell", "retention", "risk"]

# English names of the tag categories, for reports in English (the catalogue keys stay Chinese).
TAG_CATEGORY_EN = {
    "基础属性": "Basic attributes", "经营行为": "Operating behaviour", "资金流": "Flows and balances",
    "价值": "Value", "风险": "Risk", "产品持有": "Product holdings", "生命周期": "Lifecycle", "外部数据": "External data",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagDef(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label_zh: str
    label_en: str
    category: TagCategory
    definition: str
    expr: str
    type: Literal["numeric", "flag", "category"]
    grain: Literal["customer_month"] = "customer_month"
    owner: str = "数据管理部"
    refresh: Literal["monthly", "daily"] = "monthly"


class MetricDef(_Strict):
    id: str
    label_zh: str
    label_en: str
    formula: str
    grain: str
    unit: str


class TagCatalog(_Strict):
    version: int
    tags: list[TagDef]
    metrics: list[MetricDef] = []

    @model_validator(mode="after")
    def _unique(self):
        seen = set()
        for t in self.tags:
            if t.id in seen:
                raise ValueError(f"duplicate tag id {t.id}")
            seen.add(t.id)
        return self


class OutcomeDef(_Strict):
    type: Literal["product_takeup"] = "product_takeup"
    window_months: int = Field(3, ge=1, le=12)


class EventDef(_Strict):
    id: str = Field(pattern=r"^EV_[A-Z0-9_]+$")
    label_zh: str
    label_en: str
    category: EventCategory
    trigger: str
    lookback_months: int = Field(1, ge=1, le=24)
    target_products: list[str]
    outcome: OutcomeDef = OutcomeDef()
    script_zh: str
    script_en: str
    priority: int = Field(3, ge=1, le=5)
    cooling_off_days: int = Field(60, ge=0)
    suppresses_offers: bool = False


class EventCatalog(_Strict):
    version: int
    events: list[EventDef]

    @model_validator(mode="after")
    def _unique(self):
        ids = [e.id for e in self.events]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate event id(s) {sorted(dup)}")
        return self


ProductType = Literal["deposit", "loan", "bill", "settlement", "fee_service", "international"]
Channel = Literal["branch", "online", "rm"]


class ProductTagDef(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label_zh: str
    label_en: str
    dimension: Literal["type", "need", "security", "channel", "segment", "role"]


class ProductDef(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name_zh: str
    name_en: str
    type: ProductType
    segment_zh: str
    segment_en: str
    risk_level: Literal["low", "medium", "high"]
    pricing_basis_zh: str
    pricing_basis_en: str
    channels: list[Channel] = Field(min_length=1)
    term_zh: str
    term_en: str
    cross_sell: list[str] = []
    event_ids: list[str] = []
    tags: list[str] = Field(min_length=1)


class ProductCatalog(_Strict):
    """Product tag library: the product tag vocabulary and every product with its tags."""

    version: int
    product_tags: list[ProductTagDef]
    products: list[ProductDef]

    @model_validator(mode="after")
    def _consistent(self):
        ids = [p.id for p in self.products]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate product id(s) {sorted(dup)}")
        vocab = {t.id for t in self.product_tags}
        for p in self.products:
            unknown = [t for t in p.tags if t not in vocab]
            if unknown:
                raise ValueError(f"{p.id}: unknown product tag(s) {unknown}")
            bad = [c for c in p.cross_sell if c not in ids or c == p.id]
            if bad:
                raise ValueError(f"{p.id}: cross_sell names unknown or own product(s) {bad}")
        return self

    def by_id(self) -> dict[str, ProductDef]:
        return {p.id: p for p in self.products}


def _load(path: Path, model):
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError("catalogue not found", file=str(path),
                         fix="copy the default from the package (playbook init does this)") from None
    except yaml.YAMLError as exc:
        raise InputError(f"catalogue is not valid YAML: {exc}", file=str(path),
                         fix="correct the YAML syntax") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        where = ".".join(str(p) for p in loc)
        owner = ""
        if len(loc) >= 2 and isinstance(loc[1], int):
            items = raw.get(loc[0]) or []
            if loc[1] < len(items) and isinstance(items[loc[1]], dict):
                owner = f"{items[loc[1]].get('id', '')}: "
        raise InputError(f"{owner}invalid catalogue entry at '{where}': {err['msg']}", file=str(path),
                         column=where, fix="correct the entry as the message says") from None


def catalog_file(name: str, workspace_catalog: Path | None = None) -> Path:
    if workspace_catalog is not None and (workspace_catalog / name).exists():
        return workspace_catalog / name
    return catalog_dir() / name


def load_tag_catalog(workspace_catalog: Path | None = None) -> TagCatalog:
    return _load(catalog_file("tags.yaml", workspace_catalog), TagCatalog)


def load_event_catalog(workspace_catalog: Path | None = None) -> EventCatalog:
    return _load(catalog_file("events.yaml", workspace_catalog), EventCatalog)


def load_product_catalog(workspace_catalog: Path | None = None) -> ProductCatalog:
    return _load(catalog_file("products.yaml", workspace_catalog), ProductCatalog)


def load_yaml(name: str, workspace_catalog: Path | None = None) -> dict:
    with open(catalog_file(name, workspace_catalog), encoding="utf-8") as fh:
        return yaml.safe_load(fh)
