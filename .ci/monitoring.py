#!/usr/bin/env python3
"""Checks the monitoring pack and the OpenAPI document; exits non-zero naming each problem.

- deploy/prometheus: `promtool check rules` and `promtool test rules`; every alert has a severity,
  a summary and a description, and a unit test that fires it and one that does not.
- deploy/grafana: valid JSON of the shape Grafana's own dashboard schema types describe
  (@grafana/schema, checked by the TypeScript compiler), every panel on the `datasource`
  variable, every PromQL expression (panels and variables) accepted by `promtool check rules`.
- both: every metric an expression reads is in docs/operations.md's metric table (names read by
  a PromQL parser, not by pattern).
- docs/openapi.json: valid OpenAPI 3.1 (openapi-spec-validator), and every example is valid
  against its own schema (jsonschema, draft 2020-12: the 3.1 schema dialect).

Needs promtool (Debian's `prometheus` package), the Python packages pyyaml, promql-parser and
openapi-spec-validator, and npm (it installs the two npm packages below into a temporary
folder); a missing tool is a failure, never a skip.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import promql_parser
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/prometheus/freshtap-alerts.yml"
RULE_TESTS = ROOT / "deploy/prometheus/freshtap-alerts.test.yml"
DASHBOARD = ROOT / "deploy/grafana/freshtap-dashboard.json"
OPERATIONS = ROOT / "docs/operations.md"
OPENAPI = ROOT / "docs/openapi.json"

SEVERITIES = {"warning", "critical"}
NPM_PACKAGES = ["typescript@7.0.2", "@grafana/schema@13.2.3"]
SCHEMA_TYPES = "./node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.js"
# The schema's string enums refuse the plain strings a JSON file holds; this accepts each
# enum's values as literals and leaves every other check (names, types, required keys) alone.
LOOSEN = (
    "type Loosen<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined"
    " ? T : T extends Array<infer U> ? Array<Loosen<U>> : T extends object"
    " ? { [K in keyof T]: Loosen<T[K]> } : T;"
)
# Grafana fills these in before Prometheus sees the query; any duration parses the same.
GRAFANA_DURATIONS = re.compile(
    r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}"
)
LABEL_VALUES = re.compile(
    r"^\s*label_values\((?:(.*),)?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.DOTALL
)

problems = []


def fail(message):
    problems.append(message)
    print(f"FAIL: {message}")


def promtool(*args, cwd=ROOT):
    result = subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    output = (result.stdout + result.stderr).strip()
    print(f"$ promtool {' '.join(args)}\n{output}")
    if result.returncode != 0:
        fail(f"promtool {' '.join(args)} exited {result.returncode}")


def documented_metrics():
    """Metric names in the Metrics table of docs/operations.md, with histogram series."""
    text = OPERATIONS.read_text()
    section = text.split("## Metrics\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for name, kind in re.findall(
        r"^\| `([a-z_:][a-z0-9_:]*)` \| ([a-z ]+?) \|", section, re.MULTILINE
    ):
        names.add(name)
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    if not names:
        fail("docs/operations.md: no metric table found under '## Metrics'")
    return names


def metric_names(expr):
    """Every metric name an expression selects; a selector without a name is a problem."""
    names, nameless = [], []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.append(node.name)
            else:
                nameless.append(str(node))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    if nameless:
        raise ValueError(f"selector without a metric name: {nameless[0]}")
    return names


def check_names(where, expr, allowed):
    try:
        names = metric_names(expr)
    except (ValueError, RuntimeError) as error:
        fail(f"{where}: {error}")
        return
    for name in names:
        if name not in allowed:
            fail(f"{where}: metric {name} is not in docs/operations.md's metric table")


def check_rules(allowed):
    promtool("check", "rules", str(RULES.relative_to(ROOT)))
    promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    alerts = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            check_names(f"{RULES.name} {name}", rule["expr"], allowed)
            if "alert" not in rule:
                continue
            alerts.append(name)
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                fail(f"{RULES.name} {name}: severity label must be one of {sorted(SEVERITIES)}")
            for key in ("summary", "description"):
                if not rule.get("annotations", {}).get(key):
                    fail(f"{RULES.name} {name}: no {key} annotation")
    # Quiet means a test where the alert never fires, not an early moment of a firing one.
    fires, quiet = set(), set()
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        cases = test.get("alert_rule_test", [])
        fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
        fires |= fired
        quiet |= {case["alertname"] for case in cases} - fired
    for name in alerts:
        if name not in fires:
            fail(f"{RULE_TESTS.name}: no test in which {name} fires")
        if name not in quiet:
            fail(f"{RULE_TESTS.name}: no test in which {name} stays quiet")
    print(f"{len(alerts)} alerts, each fired and kept quiet by a test")


def dashboard_panels(panels):
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_queries(dashboard):
    """(where, PromQL) for every panel target and every query variable."""
    variables = dashboard.get("templating", {}).get("list", [])
    names = {v.get("name") for v in variables}
    if "datasource" not in names or not any(
        v.get("name") == "datasource" and v.get("type") == "datasource" for v in variables
    ):
        fail(f"{DASHBOARD.name}: no datasource variable named 'datasource'")
    ids = []
    for panel in dashboard_panels(dashboard.get("panels", [])):
        ids.append(panel.get("id"))
        if panel.get("type") == "row":
            continue
        where = f"{DASHBOARD.name} panel {panel.get('title')!r}"
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{where}: datasource is not the ${{datasource}} variable")
        if not panel.get("targets"):
            fail(f"{where}: no query")
        for target in panel.get("targets", []):
            yield f"{where} {target.get('refId')}", target.get("expr", "")
    if len(ids) != len(set(ids)):
        fail(f"{DASHBOARD.name}: panel ids are not unique")
    for variable in variables:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        match = LABEL_VALUES.match(query)
        if not match or not match.group(1):
            fail(
                f"{DASHBOARD.name} variable {variable.get('name')}: expected label_values(<selector>, <label>)"
            )
            continue
        yield f"{DASHBOARD.name} variable {variable.get('name')}", match.group(1)


def check_dashboard_schema(text):
    """Type-checks the dashboard as an object literal of @grafana/schema's Dashboard type."""
    with tempfile.TemporaryDirectory(prefix="dashboard-schema-") as folder:
        install = subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent", *NPM_PACKAGES],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            fail(f"npm install {' '.join(NPM_PACKAGES)} failed:\n{install.stdout}{install.stderr}")
            return
        source = Path(folder) / "dashboard.ts"
        source.write_text(
            f'import type {{ Dashboard }} from "{SCHEMA_TYPES}";\n{LOOSEN}\n'
            f"export const dashboard: Loosen<Dashboard> = {text};\n"
        )
        tsc = Path(folder) / "node_modules/.bin/tsc"
        result = subprocess.run(
            [
                str(tsc),
                "--noEmit",
                "--strict",
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
                source.name,
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        fail(
            f"{DASHBOARD.name}: does not match Grafana's dashboard schema "
            f"(line numbers are the file's plus 2):\n{result.stdout}{result.stderr}"
        )
    else:
        print(f"{DASHBOARD.name}: matches @grafana/schema's Dashboard type")


def check_dashboard(allowed):
    text = DASHBOARD.read_text()
    try:
        dashboard = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{DASHBOARD.name}: not valid JSON: {error}")
        return
    check_dashboard_schema(text)
    queries = [
        (where, GRAFANA_DURATIONS.sub("5m", expr)) for where, expr in dashboard_queries(dashboard)
    ]
    for where, expr in queries:
        check_names(where, expr, allowed)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="dashboard-queries-") as file:
        yaml.safe_dump(rules, file)
        file.flush()
        result = subprocess.run(
            ["promtool", "check", "rules", file.name], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        fail(f"{DASHBOARD.name}: promtool rejects a query:\n{result.stdout}{result.stderr}")
    print(f"{DASHBOARD.name}: {len(queries)} queries parsed by promtool")


def examples(node, where="docs/openapi.json"):
    """(where, schema, example) for every media type object that has both."""
    if isinstance(node, dict):
        if "schema" in node and "example" in node:
            yield where, node["schema"], node["example"]
        for key, value in node.items():
            yield from examples(value, f"{where} {key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from examples(value, f"{where}[{i}]")


def anchored(schema, base):
    """The schema with its document-relative `$ref`s made absolute under `base`."""
    if isinstance(schema, dict):
        return {
            k: (base + v if k == "$ref" and v.startswith("#") else anchored(v, base))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [anchored(v, base) for v in schema]
    return schema


def check_examples(spec):
    base = "urn:freshtap:openapi"
    registry = Registry().with_resource(
        base, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    count = 0
    for where, schema, example in examples(spec):
        count += 1
        validator = Draft202012Validator(anchored(schema, base), registry=registry)
        for error in validator.iter_errors(example):
            fail(f"{where}: example does not match its schema: {error.message}")
    print(f"{OPENAPI.name}: {count} examples match their schemas")


def check_openapi():
    try:
        spec = json.loads(OPENAPI.read_text())
    except json.JSONDecodeError as error:
        fail(f"{OPENAPI.name}: not valid JSON: {error}")
        return
    if not str(spec.get("openapi", "")).startswith("3.1"):
        fail(f"{OPENAPI.name}: openapi must be 3.1.x")
    errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
    for error in errors:
        fail(f"{OPENAPI.name}: {error.message}")
    if errors:
        return
    check_examples(spec)
    operations = sum(len([m for m in item if m != "parameters"]) for item in spec["paths"].values())
    print(
        f"{OPENAPI.name}: valid OpenAPI {spec['openapi']}, {len(spec['paths'])} paths, {operations} operations"
    )


def main():
    for tool, package in (
        ("promtool", "Debian package 'prometheus'"),
        ("npm", "Debian package 'npm'"),
    ):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is not installed ({package})")
            return 1
    allowed = documented_metrics()
    check_rules(allowed)
    check_dashboard(allowed)
    check_openapi()
    if problems:
        print(f"monitoring checks: {len(problems)} problem(s)")
        return 1
    print("monitoring checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
