"""What a stage notebook needs from its workspace: parameters, warehouse, language, results."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from .config import Engagement
from .workspace import Workspace


def _clean(obj, digits: int = 10):
    """JSON-safe and stable: numpy → python, floats rounded to `digits` significant digits, NaN → None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, digits) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [_clean(r, digits) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x) or math.isinf(x):
            return None
        return float(f"{x:.{digits}g}")
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


@dataclass
class StageContext:
    workspace: Workspace
    run_dir: Path
    language: str
    config: Engagement
    _con: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)
    _engine: object | None = field(default=None, repr=False)

    @classmethod
    def open(cls, workspace: str, run_dir: str = "", language: str | None = None) -> "StageContext":
        ws = Workspace.open(workspace)
        cfg = ws.config()
        rd = Path(run_dir) if run_dir else (ws.latest_run() or ws.run_dir("adhoc"))
        (rd / "results").mkdir(parents=True, exist_ok=True)
        return cls(ws, rd, language or cfg.language, cfg)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = duckdb.connect(str(self.workspace.warehouse))
        return self._con

    @property
    def engine(self):
        """Where the heavy stage SQL runs: `engine:` in engagement.yaml (DuckDB, or Spark for a
        bank that outgrows one machine); see analysis.engines."""
        if self._engine is None:
            from .engines import engine_for

            self._engine = engine_for(self.config, self.con, scratch=self.run_dir / "spark")
        return self._engine

    def build_on_engine(self, build, *tables: str):
        """Run `build(con)` on the engagement's engine and return its result.

        On DuckDB, con is the warehouse itself. On Spark, con runs the same SQL on the cluster and
        the `tables` it created are then copied into the warehouse, so the rest of the notebook
        (small aggregates, charts) reads them locally and identically on either engine.
        """
        engine = self.engine
        if engine.name == "duckdb":
            return build(self.con)
        from .engines import copy_to_duckdb

        result = build(engine.con)
        for table in tables:
            copy_to_duckdb(engine, table, self.con, self.run_dir / "spark" / "out")
        return result

    def close(self) -> None:
        if self._engine is not None and getattr(self._engine, "name", "") == "spark":
            self._engine.spark.stop()
        self._engine = None
        if self._con is not None:
            self._con.close()
            self._con = None

    def t(self, zh: str, en: str) -> str:
        return zh if self.language == "zh" else en

    @property
    def bank_name(self) -> str:
        return self.config.bank.name(self.language)

    @property
    def as_of(self) -> str:
        return self.config.as_of

    def save_results(self, stage: str, results: dict) -> Path:
        path = self.run_dir / "results" / f"{stage}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_clean(results), ensure_ascii=False, indent=2, sort_keys=True),
                       encoding="utf-8")
        tmp.replace(path)  # write, then swap: an interrupted stage never leaves half a file
        return path

    def load_results(self, stage: str) -> dict | None:
        path = self.run_dir / "results" / f"{stage}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def ingest_report(self) -> dict | None:
        p = self.run_dir / "ingest.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None

    def deliverable(self, name: str) -> Path:
        self.workspace.deliverables.mkdir(exist_ok=True)
        return self.workspace.deliverables / name
