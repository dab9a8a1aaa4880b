"""engagement.yaml is validated strictly: unknown keys and wrong types name the key."""

import pytest

from analysis.config import load_engagement
from analysis.errors import InputError
from analysis.workspace import Workspace, init_workspace


def test_init_creates_a_valid_workspace(tmp_path):
    ws = init_workspace(tmp_path / "w", bank_zh="测试银行", bank_en="Test Bank")
    cfg = ws.config()
    assert cfg.bank.name_zh == "测试银行" and cfg.as_of == "2022-12" and cfg.language == "zh"
    assert (ws.root / "data_request" / "customers.csv").exists()
    assert (ws.catalog / "tags.yaml").exists() and (ws.catalog / "events.yaml").exists()
    assert (ws.root / ".gitignore").read_text() == "*\n"
    assert Workspace.open(ws.root).root == ws.root


def test_init_refuses_to_overwrite(tmp_path):
    init_workspace(tmp_path, bank_zh="甲")
    with pytest.raises(InputError, match="already exists"):
        init_workspace(tmp_path, bank_zh="乙")


@pytest.mark.parametrize("text, key", [
    ("bank: {name_zh: a, name_en: b}\nas_of: '2022-12'\nlanguge: zh\n", "languge"),
    ("bank: {name_zh: a, name_en: b}\nas_of: '2022-12'\nstages: {opportunities: {fdr_q: high}}\n", "stages.opportunities.fdr_q"),
    ("bank: {name_zh: a, name_en: b}\nas_of: '2022-13'\n", "as_of"),
    ("bank: {name_zh: a}\nas_of: '2022-12'\n", "bank.name_en"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    p = tmp_path / "engagement.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_engagement(p)
    assert key in str(exc.value) and "engagement.yaml" in str(exc.value)


def test_yaml_is_loaded_safely(tmp_path):
    p = tmp_path / "engagement.yaml"
    p.write_text("bank: !!python/object/apply:os.system ['echo hacked']\nas_of: '2022-12'\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_engagement(p)


def test_unit_aliases_reach_the_ingest_as_chinese_units(tmp_path):
    from analysis.config import load_engagement
    p = tmp_path / "engagement.yaml"
    p.write_text("bank: {name_zh: a, name_en: b}\nas_of: '2022-12'\n"
                 "ingest: {units: {credit_lines.limit_amount: 10k_yuan}}\n", encoding="utf-8")
    assert load_engagement(p).ingest.units == {"credit_lines.limit_amount": "10k_yuan"}
