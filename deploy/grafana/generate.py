#!/usr/bin/env python3
"""Writes Tollgate's Grafana dashboards (overview.json, network.json) from the panel lists
below, so that queries stay consistent. Run after editing: python3 deploy/grafana/generate.py
The metric names used here are checked against a live gateway's /metrics by the test suite."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = "$__rate_interval"


def target(expr, legend, ref):
    return {"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": expr,
            "legendFormat": legend, "refId": ref, "range": True}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", description=""):
    return {
        "id": pid, "type": kind, "title": title, "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]}},
        "targets": [target(e, l, chr(65 + i)) for i, (e, l) in enumerate(exprs)],
    }


def row(pid, title, y):
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def quantiles(metric, selector, by=""):
    group = f"le{', ' + by if by else ''}"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [(f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))", f"p{int(q * 100)}{suffix}")
            for q in (0.5, 0.95, 0.99)]


def layout(sections):
    panels, pid, y = [], 1, 0
    for title, items in sections:
        panels.append(row(pid, title, y)); pid += 1; y += 1
        x = 0
        for item in items:
            title_, exprs, unit, width = item
            panels.append(panel(pid, title_, exprs, x, y, w=width, unit=unit)); pid += 1
            x += width
            if x >= 24:
                x = 0; y += 8
        if x:
            y += 8
    return panels


def dashboard(uid, title, panels, variables):
    return {
        "uid": uid, "title": title, "tags": ["tollgate"], "timezone": "utc", "schemaVersion": 39, "version": 1,
        "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables}, "panels": panels, "annotations": {"list": []},
    }


DATASOURCE = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus", "current": {}}


def query_var(name, query, multi=False):
    return {"name": name, "type": "query", "label": name, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2, "sort": 1,
            "includeAll": multi, "multi": multi, "current": {}}


overview = layout([
    ("Traffic", [
        ("Requests per second by network", [(f"sum by (network) (rate(tollgate_requests_total[{RATE}]))", "{{network}}")], "reqps", 12),
        ("Responses by status", [(f"sum by (status) (rate(tollgate_requests_total[{RATE}]))", "{{status}}")], "reqps", 12),
        ("5xx ratio by network", [("tollgate:requests_5xx:ratio_rate5m", "{{network}}"),
                                  (f"sum by (network) (rate(tollgate_requests_total{{status=~\"5..\"}}[{RATE}])) / sum by (network) (rate(tollgate_requests_total[{RATE}]))", "{{network}} (raw)")], "percentunit", 12),
        ("Compute units per second by plan", [(f"sum by (plan) (rate(tollgate_compute_units_total[{RATE}]))", "{{plan}}")], "short", 12),
    ]),
    ("Latency", [
        ("Request latency (gateway total)", quantiles("tollgate_request_duration_seconds", ""), "s", 12),
        ("Gateway overhead (total minus upstream wait)", quantiles("tollgate_gateway_overhead_seconds", ""), "s", 12),
    ]),
    ("Limits and auth", [
        ("Rate-limit rejections by plan and kind", [(f"sum by (plan, kind) (rate(tollgate_ratelimit_rejections_total[{RATE}]))", "{{plan}} {{kind}}")], "reqps", 8),
        ("Auth failures by reason", [(f"sum by (reason) (rate(tollgate_auth_failures_total[{RATE}]))", "{{reason}}")], "reqps", 8),
        ("Key cache", [(f"sum by (result) (rate(tollgate_keycache_requests_total[{RATE}]))", "{{result}}")], "reqps", 8),
    ]),
    ("Cache and upstreams", [
        ("Response cache by result", [(f"sum by (result) (rate(tollgate_cache_requests_total[{RATE}]))", "{{result}}")], "reqps", 8),
        ("Healthy upstream nodes by network", [("sum by (network) (tollgate_upstream_healthy)", "{{network}}")], "short", 8),
        ("Upstream outcomes", [(f"sum by (outcome) (rate(tollgate_upstream_requests_total[{RATE}]))", "{{outcome}}")], "reqps", 8),
    ]),
    ("Backends and telemetry", [
        ("Backends up", [("min by (backend) (tollgate_backend_up)", "{{backend}}")], "short", 8),
        ("Telemetry rows by outcome", [(f"sum by (outcome) (rate(tollgate_telemetry_events_total[{RATE}]))", "{{outcome}}")], "short", 8),
        ("Telemetry queue and spool", [("sum(tollgate_telemetry_queue_depth)", "queue rows"), ("sum(tollgate_telemetry_spool_bytes)", "spool bytes")], "short", 8),
        ("ClickHouse insert latency", quantiles("tollgate_telemetry_batch_duration_seconds", ""), "s", 12),
        ("ClickHouse insert failures", [(f"sum(rate(tollgate_telemetry_insert_failures_total[{RATE}]))", "failures"),
                                        (f"sum(rate(tollgate_telemetry_spool_corrupt_records_total[{RATE}]))", "corrupt spool records")], "short", 12),
    ]),
])

N = '{network=~"$network"}'
network = layout([
    ("Traffic", [
        ("Requests per second by method", [(f"sum by (method) (rate(tollgate_requests_total{N}[{RATE}]))", "{{method}}")], "reqps", 12),
        ("Responses by status", [(f"sum by (status) (rate(tollgate_requests_total{N}[{RATE}]))", "{{status}}")], "reqps", 12),
        ("Errors by method (4xx and 5xx)", [(f"sum by (method, status) (rate(tollgate_requests_total{{network=~\"$network\",status=~\"[45]..\"}}[{RATE}]))", "{{method}} {{status}}")], "reqps", 12),
        ("Compute units per second by plan", [(f"sum by (plan) (rate(tollgate_compute_units_total{N}[{RATE}]))", "{{plan}}")], "short", 12),
    ]),
    ("Latency", [
        ("Request latency", quantiles("tollgate_request_duration_seconds", N), "s", 12),
        ("Upstream latency p99 by node", [(f"histogram_quantile(0.99, sum by (le, upstream) (rate(tollgate_upstream_duration_seconds_bucket{N}[{RATE}])))", "{{upstream}}")], "s", 12),
    ]),
    ("Upstream health", [
        ("Healthy (1) per node", [(f"tollgate_upstream_healthy{N}", "{{upstream}}")], "short", 8),
        ("Circuit state per node (0 closed, 1 half-open, 2 open)", [(f"max by (upstream) (tollgate_circuit_state{N})", "{{upstream}}")], "short", 8),
        ("Upstream outcomes per node", [(f"sum by (upstream, outcome) (rate(tollgate_upstream_requests_total{N}[{RATE}]))", "{{upstream}} {{outcome}}")], "reqps", 8),
        ("Block height per node", [(f"max by (upstream) (tollgate_upstream_block_height{N})", "{{upstream}}")], "short", 8),
        ("Head lag per node (blocks)", [(f"max by (upstream) (tollgate_upstream_lag_blocks{N})", "{{upstream}}")], "short", 8),
        ("Hedged requests", [(f"sum(rate(tollgate_upstream_hedges_total{N}[{RATE}]))", "hedges")], "reqps", 8),
    ]),
    ("Cache and limits", [
        ("Response cache by result", [(f"sum by (result) (rate(tollgate_cache_requests_total{N}[{RATE}]))", "{{result}}")], "reqps", 12),
        ("Rate-limit rejections by plan and kind", [(f"sum by (plan, kind) (rate(tollgate_ratelimit_rejections_total[{RATE}]))", "{{plan}} {{kind}}")], "reqps", 12),
    ]),
])

for name, board in [
    ("overview.json", dashboard("tollgate-overview", "Tollgate / Overview", overview, [DATASOURCE])),
    ("network.json", dashboard("tollgate-network", "Tollgate / Network", network,
                               [DATASOURCE, query_var("network", "label_values(tollgate_requests_total, network)", multi=True)])),
]:
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(board, f, indent=2)
        f.write("\n")
print("wrote overview.json and network.json")
