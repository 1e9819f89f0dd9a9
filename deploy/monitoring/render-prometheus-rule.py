#!/usr/bin/env python3
"""Renders deploy/k8s/monitoring/prometheus-rule.yaml (a Prometheus Operator
PrometheusRule) from deploy/monitoring/alerts.yaml, so that the cluster runs
the rules the unit tests test. `make monitoring` writes it; deploy/check.sh
fails while the committed file differs from a fresh rendering.

Usage: render-prometheus-rule.py [--check]"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/monitoring/alerts.yaml"
OUT = ROOT / "deploy/k8s/monitoring/prometheus-rule.yaml"

HEADER = """\
# Generated from deploy/monitoring/alerts.yaml by `make monitoring`: edit that
# file (and its tests, alerts.test.yaml), not this one.
"""


def render() -> str:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "shequ-alerts",
            "labels": {"app.kubernetes.io/name": "shequ-alerts", "app.kubernetes.io/component": "monitoring"},
        },
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run `make monitoring`")
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
