"""``docs/alerts.yml``: a valid Prometheus rule file (``promtool check rules`` when promtool is
installed; always the rule schema), whose expressions name metrics ``/metrics`` exports and whose
runbook links lead to README sections."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from imagematch.app import Services
from imagematch.metrics import LedgerCollector, render_metrics
from imagematch.sources.catalog import pending_catalog_jobs

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docs" / "alerts.yml"
README = (REPO / "README.md").read_text()
# The rule file schema (prometheus.io/docs/prometheus/latest/configuration/alerting_rules).
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_KEYS = {"name", "rules", "interval", "limit", "query_offset", "labels"}
_ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
_RECORD_KEYS = {"record", "expr", "labels"}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"} and document["groups"]
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names)), "group names are unique"
    rules: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert set(group) <= _GROUP_KEYS and isinstance(group["rules"], list) and group["rules"]
        rules += group["rules"]
    return rules


def test_rules_follow_the_rule_file_schema() -> None:
    for rule in _rules():
        kind_keys = _ALERT_KEYS if "alert" in rule else _RECORD_KEYS
        assert ("alert" in rule) != ("record" in rule) and set(rule) <= kind_keys, rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert _NAME.match(rule.get("alert") or rule["record"].replace(":", "_"))
        for key in ("for", "keep_firing_for"):
            assert key not in rule or _DURATION.match(str(rule[key])), rule[key]
        for key in ("labels", "annotations"):
            assert all(_NAME.match(k) and isinstance(v, str) for k, v in rule.get(key, {}).items())
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_the_five_alerts_each_link_a_runbook_section() -> None:
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert len(alerts) == 5
    headings = {_slug(line.lstrip("#").strip()) for line in README.splitlines() if line.startswith("#")}
    for name, rule in alerts.items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("README.md#") and url.split("#", 1)[1] in headings, name
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket")


def test_expressions_name_only_exported_metrics(services: Services) -> None:
    # An index is served.
    collector = LedgerCollector(services.ledger, services.index, services.clock, pending_catalog_jobs)
    exported: set[str] = set()
    for family in text_string_to_metric_families(render_metrics(collector).decode()):
        suffixes = {"counter": ["_total"], "histogram": ["_count", "_sum", "_bucket"]}.get(family.type, [""])
        exported |= {family.name + suffix for suffix in suffixes}
    used = {name for rule in _rules() for name in re.findall(r"\bimagematch_[a-z0-9_]+", rule["expr"])}
    assert used and used <= exported, used - exported


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")
