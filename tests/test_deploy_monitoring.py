"""deploy/prometheus, deploy/alertmanager and deploy/grafana: well-formed, in step with
AlertSettings and AnomalySettings, and using only metric names the real app exports at
GET /metrics."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.settings import AlertSettings, AnomalySettings, IngestSettings
from tests.needs import need_tool

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ANOMALIES = DEPLOY / "prometheus" / "anomalies.yml"
ANOMALY_RULE_TESTS = Path(__file__).parent / "fixtures" / "prometheus" / "anomalies_test.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
COMPOSE = DEPLOY / "compose.yaml"
DASHBOARD = DEPLOY / "grafana" / "docchat-dashboard.json"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "docchat.yml"

METRIC_NAME = re.compile(r"docchat_[a-z0-9_]+")
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
DS_VARIABLE = "DS_PROMETHEUS"
EXPECTED_ALERTS = {
    "DocchatHighErrorRate",
    "DocchatSlowAnswers",
    "DocchatUngroundedAnswers",
    "DocchatNoContextAnswers",
    "DocchatWeakRetrieval",
    "DocchatModelQueueBacklog",
    "DocchatIngestFailures",
    "DocchatDown",
    "DocchatSlowFirstToken",
}
EXPECTED_ANOMALY_ALERTS = {
    "DocchatAnomalyGroundingRate",
    "DocchatAnomalyThumbsDown",
    "DocchatAnomalyRefusals",
    "DocchatAnomalyRetrievalScore",
    "DocchatAnomalyAnswerLength",
    "DocchatAnomalyLatency",
    "DocchatDocumentsDrop",
    "DocchatChunksDrop",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    """Every rule of every group in alerts.yml."""
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def anomaly_rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of anomalies.yml."""
    return [rule for group in load_yaml(ANOMALIES)["groups"] for rule in group["rules"]]


def rule(name: str) -> dict[str, Any]:
    (found,) = (r for r in rules() + anomaly_rules() if r.get("alert") == name)
    return found


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves are left out."""
    for panel in board["panels"]:
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard query and variable."""
    found = [(f"alerts.yml {r['alert']}", str(r["expr"])) for r in rules()]
    found += [
        (f"anomalies.yml {r.get('alert') or r['record']}", str(r["expr"])) for r in anomaly_rules()
    ]
    for panel in panels(dashboard()):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for variable in dashboard().get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and query:
            text = query.get("query", "") if isinstance(query, dict) else str(query)
            found.append((f"dashboard variable {variable['name']!r}", text))
    return found


def metric_names(expr: str) -> set[str]:
    """The docchat metric names an expression uses (not counting quoted label values)."""
    return set(METRIC_NAME.findall(STRING_LITERAL.sub('""', expr)))


def parenthesised(text: str) -> str:
    """The inside of the group that opens `text` with "(" (up to its matching ")")."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return text[1:index]
    pytest.fail(f"unclosed ( in {text!r}")


def histogram_quantile_arguments(expr: str) -> list[str]:
    """The argument text of every histogram_quantile(...) call in an expression."""
    return [
        parenthesised(expr[match.end() - 1 :])
        for match in re.finditer(r"histogram_quantile\s*\(", expr)
    ]


def check_brackets(expr: str) -> str | None:
    """Why the brackets of an expression (outside strings) do not pair up, or None."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in STRING_LITERAL.sub('""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return f"unmatched {char!r}"
    return f"unclosed {stack[-1]!r}" if stack else None


# --- Prometheus


def test_prometheus_config_scrapes_docchat_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml", "anomalies.yml"]
    assert (PROMETHEUS_CONFIG.parent / "alerts.yml").is_file()
    assert ANOMALIES.is_file()
    (managers,) = config["alerting"]["alertmanagers"]
    assert managers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    (job,) = (j for j in config["scrape_configs"] if j["job_name"] == "docchat")
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "15s"
    assert job["static_configs"] == [{"targets": ["docchat:8000"]}]
    text = PROMETHEUS_CONFIG.read_text(encoding="utf-8")
    assert "DOCCHAT_TELEMETRY__METRICS_REQUIRE_KEY=true" in text
    assert "credentials_file: /run/secrets/docchat_metrics_key" in text


def test_every_rule_is_complete() -> None:
    groups = load_yaml(ALERTS)["groups"]
    assert [g["name"] for g in groups] == ["docchat"]
    found = rules()
    names = [r.get("alert") for r in found]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= EXPECTED_ALERTS
    for r in found:
        where = r.get("alert", r)
        assert r.get("alert"), f"rule without a name: {r}"
        assert isinstance(r.get("expr"), str), f"{where}: no expr"
        assert r["expr"].strip(), f"{where}: empty expr"
        assert re.fullmatch(r"\d+[smhd]", str(r.get("for", ""))), f"{where}: no valid for:"
        assert r.get("labels", {}).get("severity") in {"critical", "warning", "info"}, where
        annotations = r.get("annotations", {})
        assert annotations.get("summary"), f"{where}: no summary"
        assert annotations.get("description"), f"{where}: no description"


def test_rule_thresholds_match_the_in_app_monitors() -> None:
    """Same conditions and default thresholds as AlertSettings, and the same minimum of
    events before a rate may alert."""
    defaults = AlertSettings()
    at_least = f">= {defaults.min_events}"
    checks = {
        "DocchatHighErrorRate": f"> {defaults.error_rate:g}",
        "DocchatSlowAnswers": f"> {defaults.latency_p95_s:g}",
        "DocchatUngroundedAnswers": f"> {defaults.ungrounded_rate:g}",
        "DocchatNoContextAnswers": f"> {defaults.no_context_rate:g}",
        "DocchatWeakRetrieval": f"< {defaults.min_retrieval_score:g}",
    }
    for name, threshold in checks.items():
        expr = " ".join(rule(name)["expr"].split())
        assert f") {threshold}" in expr, f"{name}: expected the threshold {threshold!r}: {expr}"
        assert expr.endswith(at_least), f"{name}: expected a minimum of {at_least!r} events"
    assert 'docchat_http_requests_total{status=~"5.."}' in rule("DocchatHighErrorRate")["expr"]
    assert 'route="/api/chat"' in rule("DocchatSlowAnswers")["expr"]
    assert 'verdict=~"grounded|ungrounded"' in rule("DocchatUngroundedAnswers")["expr"]
    # The mean, as the in-app monitor computes it.
    weak = rule("DocchatWeakRetrieval")["expr"]
    assert "docchat_retrieval_top_score_sum" in weak
    assert "docchat_retrieval_top_score_count" in weak


def test_rate_divisions_are_guarded() -> None:
    """Every denominator is clamped or a parenthesised `... > 0`, so no rule divides by
    zero."""
    for r in rules() + anomaly_rules():
        expr = STRING_LITERAL.sub('""', " ".join(r["expr"].split()))
        for match in re.finditer(r"/\s*", expr):
            after = expr[match.end() :]
            group = parenthesised(after[after.index("(") :]) if "(" in after else ""
            guarded = after.startswith("clamp_min(") or (
                after.startswith("(") and group.rstrip().endswith("> 0")
            )
            assert guarded, f"{r.get('alert') or r['record']}: unguarded division at {after[:60]!r}"


def test_anomaly_rules_are_complete_and_match_the_in_app_monitors() -> None:
    """Recording rules named docchat:<signal>:<what>; every alert complete; the same z
    threshold, minimum of events and drop share as AnomalySettings' defaults; the
    seasonal baseline from the same hour of each of the last 7 days."""
    defaults = AnomalySettings()
    groups = load_yaml(ANOMALIES)["groups"]
    assert [g["name"] for g in groups] == ["docchat-anomalies"]
    found = anomaly_rules()
    records = [r["record"] for r in found if "record" in r]
    assert len(records) == len(set(records)), "duplicate recording rules"
    assert all(re.fullmatch(r"docchat:[a-z0-9_]+:[a-z0-9_]+", name) for name in records)
    alerts = {r["alert"]: r for r in found if "alert" in r}
    assert set(alerts) == EXPECTED_ANOMALY_ALERTS
    for name, r in alerts.items():
        assert re.fullmatch(r"\d+[smhd]", str(r.get("for", ""))), name
        assert r["labels"]["severity"] in {"critical", "warning"}, name
        assert r["annotations"]["summary"], name
        assert r["annotations"]["description"], name
    for name, r in alerts.items():
        if not name.startswith("DocchatAnomaly"):
            continue
        expr = " ".join(r["expr"].split())
        assert re.search(rf"(<\s*-|>\s*){defaults.threshold:g}\b", expr), name
        assert f">= {defaults.min_events}" in expr, name
        signal = r["labels"]["signal"]
        median = next(x for x in found if x.get("record") == f"docchat:{signal}:median7d")
        offsets = re.findall(r"offset (\d+)d", median["expr"])
        assert offsets == [str(d) for d in range(1, defaults.history_days + 1)], name
    for name in ("DocchatDocumentsDrop", "DocchatChunksDrop"):
        assert f"> {defaults.drop_share:g}" in " ".join(alerts[name]["expr"].split())
    assert IngestSettings().mass_change_share > defaults.drop_share  # a refused run never alerts


def test_promtool_runs_the_anomaly_rule_tests() -> None:
    """promtool's own rule tests: a week of steady traffic, then a model that stops
    grounding, a flood of thumbs-down, a collection emptied: each alert fires, and only
    it."""
    promtool = need_tool("promtool", "the anomaly rules were not run (apt-get install prometheus)")
    done = subprocess.run(
        [promtool, "test", "rules", str(ANOMALY_RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"promtool test rules:\n{done.stdout}{done.stderr}"


# --- Alertmanager


def test_alertmanager_routes_everything_to_the_webhook() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert route["receiver"] == "webhook"
    assert all(sub["receiver"] == "webhook" for sub in route.get("routes", []))
    (receiver,) = config["receivers"]
    (hook,) = receiver["webhook_configs"]
    assert hook["send_resolved"] is True
    assert hook["url"].startswith("https://")
    assert "@" not in hook["url"], "credentials belong in the secret file, not the URL"
    auth = hook["http_config"]["authorization"]
    assert auth["credentials_file"] == "/run/secrets/alertmanager_webhook_token"
    assert "credentials" not in auth


def test_compose_runs_alertmanager_for_prometheus() -> None:
    services = load_yaml(COMPOSE)["services"]
    manager = services["alertmanager"]
    assert "./alertmanager:/etc/alertmanager:ro" in manager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in manager["command"]
    assert manager["secrets"] == ["alertmanager_webhook_token"]
    assert manager["ports"][0].startswith("127.0.0.1:")
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    secrets = load_yaml(COMPOSE)["secrets"]
    assert secrets["alertmanager_webhook_token"] == {"file": "./secrets/alertmanager_webhook_token"}
    assert "alertmanager_webhook_token" in (DEPLOY / "make-secrets").read_text()


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = need_tool("amtool", "apt-get install prometheus-alertmanager")
    done = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"amtool check-config:\n{done.stdout}{done.stderr}"


def test_promtool_accepts_config_and_rules() -> None:
    promtool = need_tool("promtool", "the Prometheus files went unchecked (apt install prometheus)")
    for args in (
        ["check", "rules", str(ALERTS), str(ANOMALIES)],
        ["check", "config", str(PROMETHEUS_CONFIG)],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


# --- Grafana


def test_dashboard_structure() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables[DS_VARIABLE]["type"] == "datasource"
    assert variables[DS_VARIABLE]["query"] == "prometheus"
    found = list(panels(board))
    assert found
    ids = [p["id"] for p in found]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in found:
        title = panel.get("title")
        assert title, f"panel without a title: {panel.get('id')}"
        assert panel.get("datasource", {}).get("uid") == f"${{{DS_VARIABLE}}}", title
        assert {"x", "y", "w", "h"} <= set(panel.get("gridPos", {})), title
        targets = panel.get("targets", [])
        assert any(t.get("expr", "").strip() for t in targets), f"{title}: no target with expr"
        for target in targets:
            assert target.get("refId"), f"{title}: target without refId"


def test_dashboard_has_the_wanted_views() -> None:
    """Each view the dashboard is for queries the metric behind it."""
    used: set[str] = set()
    for _, expr in expressions():
        used |= metric_names(expr)
    wanted = {
        "docchat_http_requests_total",
        "docchat_http_request_duration_seconds_bucket",
        "docchat_chat_stage_duration_seconds_bucket",
        "docchat_generation_tokens_per_second_bucket",
        "docchat_prompt_tokens_total",
        "docchat_completion_tokens_total",
        "docchat_llm_waiting_requests",
        "docchat_llm_running_generations",
        "docchat_retrieval_top_score_bucket",
        "docchat_answer_grounding_score_bucket",
        "docchat_answers_total",
        "docchat_ingest_runs_total",
        "docchat_ingest_files_total",
        "docchat_ingest_chunks_total",
        "docchat_ingest_last_run_timestamp_seconds",
        "docchat_model_info",
        "docchat_alerts_firing",
        "docchat_feedback_total",
    }
    assert wanted <= used, f"not on the dashboard: {sorted(wanted - used)}"


def test_grafana_provisioning_loads_the_dashboard() -> None:
    datasources = load_yaml(GRAFANA_DATASOURCES)
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    providers = load_yaml(GRAFANA_DASHBOARDS)["providers"]
    (provider,) = providers
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
    assert DASHBOARD.name in GRAFANA_DASHBOARDS.read_text(encoding="utf-8")


# --- both


def test_expressions_are_balanced() -> None:
    for where, expr in expressions():
        problem = check_brackets(expr)
        assert problem is None, f"{where}: {problem} in {expr!r}"
        for argument in histogram_quantile_arguments(expr):
            names = metric_names(argument)
            assert names, f"{where}: histogram_quantile over no docchat metric"
            for name in names:
                assert name.endswith("_bucket"), (
                    f"{where}: histogram_quantile needs {name}_bucket, not {name}"
                )


# Names a family declared in /metrics but without samples yet (a labelled metric no
# code has set) will have, by its type.
EMPTY_FAMILY_NAMES = {
    "gauge": ("",),
    "counter": ("_total",),
    "histogram": ("_bucket", "_count"),
    "info": ("_info",),
}


def scrape(client: TestClient) -> tuple[set[str], set[str]]:
    """The sample names the real app exports after a chat (so labelled series exist),
    and the names of declared families that have no samples yet."""
    question = "What port does the widget server listen on by default?"
    answer = client.post("/api/chat", json={"question": question, "stream": False})
    assert answer.status_code == 200, answer.text
    response = client.get("/metrics")
    assert response.status_code == 200, f"GET /metrics: {response.status_code}"
    assert response.headers["content-type"].startswith("text/plain")
    samples: set[str] = set()
    declared: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        samples |= {sample.name for sample in family.samples}
        if not family.samples:
            suffixes = EMPTY_FAMILY_NAMES.get(family.type, ())
            declared |= {family.name + suffix for suffix in suffixes}
    return samples, declared


@pytest.mark.slow
def test_rules_and_dashboard_use_only_exported_metrics(client: TestClient) -> None:
    """Every name in a rule or a dashboard query is one the app exports, exactly (with
    its _total/_bucket/_sum/_count suffix). A family the app declares but has not set
    yet (docchat_alerts_firing before any monitor reports) counts by its type."""
    samples, declared = scrape(client)
    assert "docchat_http_requests_total" in samples
    assert "docchat_chat_stage_duration_seconds_bucket" in samples
    assert "docchat_answers_total" in samples
    missing: dict[str, list[str]] = {}
    for where, expr in expressions():
        for name in metric_names(expr):
            if name not in samples | declared:
                missing.setdefault(name, []).append(where)
    assert not missing, "metrics the app does not export:\n" + "\n".join(
        f"  {name}: {', '.join(places)}" for name, places in sorted(missing.items())
    )
