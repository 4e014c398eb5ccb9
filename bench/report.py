#!/usr/bin/env python3
"""Turns one benchmark run (bench/run.sh) into results JSON and BENCHMARKS.md.

Every number in the Markdown comes from the measurements file; nothing is typed in. Exits 1
when a scenario produced no numbers or an exactly-once check failed (after writing both files).
"""

import argparse
import json
import sys

RSS_BUDGET_KB = 64 * 1024


def load(args):
    meta = json.load(open(args.meta))
    rows = [json.loads(line) for line in open(args.measurements) if line.strip()]
    commands = []
    for line in open(args.commands):
        line = line.rstrip("\n")
        if line and line not in commands:
            commands.append(line)
    return meta, rows, commands


def by(rows, scenario):
    return {r.get("connections"): r for r in rows if r["scenario"] == scenario}


def one(rows, scenario):
    found = [r for r in rows if r["scenario"] == scenario]
    return found[-1] if found else None


def ok_rps(r):
    return r is not None and not r.get("failed") and r.get("requests", 0) > 0


def mb(kb):
    return f"{kb / 1024:.1f}" if kb is not None else "–"


def pct(x):
    return f"{100 * x:.0f} %"


def evaluate(meta, rows):
    """The performance budgets (docs/architecture.md); each: (target, measured, met or None when not measured)."""
    targets = []
    parse, intake, naive, e2e = (by(rows, s) for s in ("parse_only", "intake", "naive_relay", "e2e"))
    for c in meta["settings"]["connections"]:
        if ok_rps(parse.get(c)) and ok_rps(intake.get(c)):
            ratio = intake[c]["accepted_per_s"] / parse[c]["rps"]
            targets.append((f"durable intake ≥ 50 % of parse-only throughput ({c} connections)",
                            f"{intake[c]['accepted_per_s']:.0f} / {parse[c]['rps']:.0f} req/s = {pct(ratio)}",
                            ratio >= 0.5))
    top = max(meta["settings"]["connections"])
    if ok_rps(intake.get(top)):
        if top >= 64:
            p99 = intake[top]["p99_ms"]
            targets.append(("durable intake p99 < 10 ms at 64 connections", f"{p99:.2f} ms", p99 < 10))
    for c in meta["settings"]["connections"]:
        if e2e.get(c) and naive.get(c) and ok_rps(naive[c]):
            a, b = e2e[c]["delivered_per_s"], naive[c]["delivered_per_s"]
            targets.append((f"sustained end to end ≥ naive relay ({c} connections)",
                            f"{a:.0f} / {b:.0f} records/s = {pct(a / b) if b else '–'}", a >= b))
    lat = one(rows, "latency")
    if lat:
        targets.append(("idle end-to-end latency p50 < 5 ms",
                        f"p50 {lat['e2e_p50_ms']:.2f} ms, p99 {lat['e2e_p99_ms']:.2f} ms",
                        lat["e2e_p50_ms"] < 5))
    ct, naive_ct, net = one(rows, "e2e_ct"), one(rows, "naive_ct"), one(rows, "e2e_ct_network")
    if ct and naive_ct and ok_rps(naive_ct) and net:
        a, b = ct["delivered_per_s"], naive_ct["delivered_per_s"]
        targets.append(("end to end against a CleverTap-like network ≥ 100× the naive relay",
                        f"{a:.0f} / {b:.0f} records/s = {a / b:.0f}×" if b else f"{a:.0f} / 0 records/s",
                        b == 0 and a > 0 or (b > 0 and a / b >= 100)))
        targets.append(("… never more than `delivery.max_in_flight` uploads in flight, no 429 drawn",
                        f"{net['sim_max_in_flight_seen']} in flight at most (max_in_flight {net['max_in_flight']}), "
                        f"{net['sim_throttled']} × 429",
                        net["sim_max_in_flight_seen"] <= net["max_in_flight"] and net["sim_throttled"] == 0))
    for label, names in (("intake and end to end", ("intake", "e2e", "e2e_ct", "upload")),
                         ("draining the backlog", ("backlog",)),
                         ("2000 connections", ("many",))):
        loaded = [r for r in rows if r["scenario"] in names and "rss_peak_kb" in r]
        if loaded:
            peak = max(r["rss_peak_kb"] for r in loaded)
            targets.append((f"RSS < 64 MB under load (SQLite, {label})", f"peak {mb(peak)} MB",
                            peak < RSS_BUDGET_KB))
    over = one(rows, "overload")
    if over and ok_rps(over):
        shed = over.get("status_503", 0)
        with_ra = over.get("status_503_retry_after", 0)
        bounded = over["rss_peak_kb"] < RSS_BUDGET_KB and shed > 0 and shed == with_ra
        targets.append(("memory bounded under overload (sheds with 503 + Retry-After)",
                        f"peak {mb(over['rss_peak_kb'])} MB; {shed} × 503 ({pct(shed / over['requests'])}), "
                        f"{with_ra} with Retry-After", bounded))
    bl = one(rows, "backlog")
    if bl and ok_rps(bl.get("intake_alone")) and bl.get("intake_while_draining"):
        alone = bl["intake_alone"]["accepted_per_s"]
        during = bl["intake_while_draining"]["accepted_per_s"]
        ratio = during / alone if alone else 0
        targets.append((f"a backlog of {bl['rows']:,} pending rows drains without slowing intake by more than half",
                        f"{during:.0f} / {alone:.0f} req/s = {pct(ratio)} while draining at "
                        f"{bl['drain_rows_per_s']:.0f} rows/s", ratio >= 0.5 and not bl["drain_timed_out"]))
    pgi, pge, pg2e = by(rows, "pg_intake"), by(rows, "pg_e2e"), one(rows, "pg2_e2e")
    if pgi.get(top) and ok_rps(pgi[top]):
        rate = pgi[top]["accepted_per_s"]
        targets.append((f"PostgreSQL intake, one replica ≥ 10,000 req/s ({top} connections)", f"{rate:.0f} req/s",
                        rate >= 10000))
    if pge.get(top) and ok_rps(pge[top]):
        rate = pge[top]["delivered_per_s"]
        targets.append((f"PostgreSQL end to end, one replica ≥ 5,000 records/s ({top} connections)",
                        f"{rate:.0f} records/s", rate >= 5000))
        if pg2e and ok_rps(pg2e):
            two = pg2e["delivered_per_s"]
            targets.append(("PostgreSQL end to end, two replicas behind nginx faster than one",
                            f"{two:.0f} / {rate:.0f} records/s", two > rate))
    return targets


def problems(meta, rows):
    found = []
    needed = ["parse_only", "naive_relay", "intake", "e2e", "overload", "naive_ct", "e2e_ct", "many", "upload"]
    if meta["postgres"]["enabled"]:
        needed += ["pg_intake", "pg_e2e"]
        if not meta["postgres"]["nginx_skipped_reason"]:
            needed += ["pg2_intake", "pg2_e2e"]
    for scenario in needed:
        got = [r for r in rows if r["scenario"] == scenario]
        if not got or not all(ok_rps(r) for r in got):
            found.append(f"scenario {scenario} produced no numbers")
    if not one(rows, "latency"):
        found.append("scenario latency produced no numbers")
    bl = one(rows, "backlog")
    if not bl or not ok_rps(bl.get("intake_alone")) or not ok_rps(bl.get("intake_while_draining")):
        found.append("scenario backlog produced no numbers")
    elif bl["drain_timed_out"]:
        found.append("the backlog did not drain in time")
    for r in rows:
        if r["scenario"] == "check" and not r["ok"]:
            found.append(f"check failed: {r['name']}: {r['detail']}")
    return found


def wrk_table(rows, scenarios, extra=()):
    head = "| scenario | connections | requests/s | 202/s | p50 ms | p99 ms | 503 | errors | peak RSS MB |"
    for title, _ in extra:
        head += f" {title} |"
    lines = [head, "|" + "---|" * (9 + len(extra))]
    for label, scenario in scenarios:
        for c, r in sorted(by(rows, scenario).items(), key=lambda kv: kv[0] or 0):
            if not ok_rps(r):
                lines.append(f"| {label} | {c} | failed | | | | | | |" + " |" * len(extra))
                continue
            errors = sum(r["errors"].values())
            line = (f"| {label} | {c} | {r['rps']:.0f} | {r['accepted_per_s']:.0f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['status_503']} | {errors} | {mb(r.get('rss_peak_kb'))} |")
            for _, fn in extra:
                line += f" {fn(r)} |"
            lines.append(line)
    return "\n".join(lines)


def markdown(meta, rows, commands, targets, found, analysis):
    m = meta["machine"]
    s = meta["settings"]
    out = ["# freshtap benchmarks", ""]
    out.append(f"Generated by `{meta['reproduce']}` from `bench/results/latest.json` on {meta['date_utc']} "
               f"(commit `{meta['git_commit'][:12]}`{', with local changes' if meta['git_dirty'] else ''}; "
               f"the run took {meta['bench_seconds']} s). Do not edit by hand: re-run the script.")
    out += ["", "## Machine", "",
            f"- {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_mb']} MB RAM, Linux {m['kernel']}",
            f"- {m['rustc']}; load generator {m['wrk']} on the same machine, everything on 127.0.0.1",
            f"- {s['body_bytes']}-byte Freshsales Simple-mode contact, unique per request; "
            f"{s['duration_s']} s per point; connections {', '.join(map(str, s['connections']))}; "
            f"relay log level `{s['log_level']}`", ""]
    out += ["## Performance budgets (docs/architecture.md)", "", "| target | measured | |", "|---|---|---|"]
    for target, measured, met in targets:
        out.append(f"| {target} | {measured} | {'met' if met else '**missed**'} |")
    if found:
        out += ["", "**Problems in this run:**", ""] + [f"- {p}" for p in found]
    out += ["", "## Ratios against the baselines of this run", "",
            "| connections | durable intake / parse-only | end to end / naive relay |", "|---|---|---|"]
    parse, intake, naive, e2e = (by(rows, x) for x in ("parse_only", "intake", "naive_relay", "e2e"))
    for c in s["connections"]:
        a = (f"{pct(intake[c]['accepted_per_s'] / parse[c]['rps'])}"
             if ok_rps(intake.get(c)) and ok_rps(parse.get(c)) else "–")
        b = (f"{pct(e2e[c]['delivered_per_s'] / naive[c]['delivered_per_s'])}"
             if e2e.get(c) and ok_rps(naive.get(c)) and naive[c]["delivered_per_s"] else "–")
        out.append(f"| {c} | {a} | {b} |")
    out += ["", "## Throughput and latency", "",
            "requests/s counts every answer; 202/s only webhooks accepted (stored, for freshtap; "
            "delivered upstream, for the naive relay). Latency is wrk's, per HTTP request.", "",
            wrk_table(rows, [("parse-only axum handler", "parse_only"), ("naive relay", "naive_relay"),
                             ("freshtap intake (delivery off)", "intake")]), ""]
    out += ["### End to end (freshtap + CleverTap simulator)", "",
            "Load for the stated time, then the queue drains; *delivered/s* = records the simulator "
            "accepted ÷ (load + drain time), the sustained rate. The naive relay's delivered/s is its 202/s "
            "(it answers after upstream).", "",
            wrk_table(rows, [("freshtap end to end", "e2e"), ("naive relay", "naive_relay")],
                      extra=[("delivered/s", lambda r: f"{r['delivered_per_s']:.0f}"),
                             ("drain after load s", lambda r: f"{r['drain_after_load_s']}" if "drain_after_load_s" in r else "–")]),
            ""]
    ct, naive_ct, net = one(rows, "e2e_ct"), one(rows, "naive_ct"), one(rows, "e2e_ct_network")
    if ct and naive_ct and net:
        out += ["### End to end against a CleverTap-like network", "",
                f"The simulator holds every upload {net['latency_ms']} ms (a round trip to CleverTap) and answers 429 "
                "beyond 15 requests in flight per account, as CleverTap does. The naive relay forwards each webhook "
                "inline; its delivered/s is records the simulator accepted ÷ load time. freshtap keeps to "
                f"`delivery.max_in_flight` ({net['max_in_flight']}).", "",
                wrk_table(rows, [("freshtap end to end", "e2e_ct"), ("naive relay", "naive_ct")],
                          extra=[("delivered/s", lambda r: f"{r['delivered_per_s']:.0f}"),
                                 ("uploads in flight at most", lambda r: str(r.get("sim_max_in_flight_seen", net["sim_max_in_flight_seen"]))),
                                 ("429 drawn", lambda r: str(r.get("sim_throttled", net["sim_throttled"])))]),
                ""]
    up = one(rows, "upload")
    if up and ok_rps(up):
        out += ["### Drop-in `/1/upload`", "",
                f"CleverTap's Upload API served by freshtap: {up['records_per_request']} CRM-sized profile records "
                f"({up['bytes_per_request'] / 1e6:.2f} MB) per request, {up['connections']} connections, each request "
                "answered with CleverTap's answer after its records are committed; then the queue drains to the "
                "simulator (*delivered/s* over load + drain).", "",
                "| requests/s | records answered processed/s | p50 ms | p99 ms | non-200 | peak RSS MB | delivered/s | drain after load s |",
                "|---|---|---|---|---|---|---|---|",
                f"| {up['rps']:.1f} | {up['records_per_s']:.0f} | {up['p50_ms']:.1f} | {up['p99_ms']:.1f} | "
                f"{up['status_other']} | {mb(up['rss_peak_kb'])} | {up['delivered_per_s']:.0f} | {up['drain_after_load_s']} |", ""]
    many = one(rows, "many")
    if many:
        out += ["### Many connections", "",
                f"{many['connections']} connections held open for the load (delivery on), then the queue drains.", "",
                wrk_table(rows, [("freshtap end to end", "many")],
                          extra=[("delivered/s", lambda r: f"{r['delivered_per_s']:.0f}")]), ""]
    lat = one(rows, "latency")
    if lat:
        out += ["### Idle end-to-end latency", "",
                f"{lat['count']} webhooks one at a time ({lat['bytes']} bytes); time from sending the webhook to "
                "the simulator counting its record as accepted (polled every 0.5 ms).", "",
                "| | p50 ms | p99 ms | max ms |", "|---|---|---|---|",
                f"| accept → CleverTap accepted | {lat['e2e_p50_ms']:.2f} | {lat['e2e_p99_ms']:.2f} | {lat['e2e_max_ms']:.2f} |",
                f"| webhook answered 202 | {lat['answer_p50_ms']:.2f} | {lat['answer_p99_ms']:.2f} | |", ""]
    over = one(rows, "overload")
    if over and ok_rps(over):
        samples = over.get("rss_samples_kb") or [0]
        out += ["### Overload", "",
                f"{over['connections']} connections for {meta['settings']['overload_s']} s against a relay with "
                f"`server.max_concurrent_requests = {over['max_concurrent_requests']}`"
                + (f" and `server.max_waiting_bytes = {over['max_waiting_bytes']}`" if "max_waiting_bytes" in over else "")
                + " (delivery on).", "",
                "| requests/s | 202/s | 503 share | 503 with Retry-After | p99 ms | peak RSS MB | RSS first → last sample MB | drained after s |",
                "|---|---|---|---|---|---|---|---|",
                f"| {over['rps']:.0f} | {over['accepted_per_s']:.0f} | {pct(over['status_503'] / over['requests'])} | "
                f"{over['status_503_retry_after']} / {over['status_503']} | {over['p99_ms']:.2f} | {mb(over['rss_peak_kb'])} | "
                f"{mb(samples[0])} → {mb(samples[-1])} | {over['drain_after_load_s']} |", ""]
    bl = one(rows, "backlog")
    if bl and bl.get("intake_alone"):
        a, d = bl["intake_alone"], bl["intake_while_draining"]
        out += ["### Backlog", "",
                f"{bl['rows']:,} pending rows accumulated with delivery disabled (in {bl['fill_s']:.0f} s, "
                f"{bl['fill_rows_per_s']:.0f} rows/s), intake measured on that queue, then the relay restarted "
                f"with delivery enabled and the same load ({bl['connections']} connections) applied while it drains.", "",
                "| | 202/s | p50 ms | p99 ms |", "|---|---|---|---|",
                f"| intake alone (full queue, delivery off) | {a['accepted_per_s']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} |",
                f"| intake while draining | {d['accepted_per_s']:.0f} | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} |", "",
                f"Drain: {bl['drain_rows_per_s']:.0f} rows/s overall ({bl['drain_total_s']:.1f} s for everything); "
                f"{bl['delivered_during_intake_per_s']:.0f} rows/s while the intake load ran. "
                f"Peak RSS {mb(bl['rss_peak_kb'])} MB.", ""]
    pg = meta["postgres"]
    out += ["### PostgreSQL", ""]
    if not pg["enabled"]:
        out += [f"Not measured: {pg['skipped_reason']}.", ""]
    else:
        out += ["Each run in a fresh schema. Two replicas: both on this machine behind one nginx worker "
                "(loopback), sharing the queue.", "",
                wrk_table(rows, [("intake, 1 replica", "pg_intake"), ("end to end, 1 replica", "pg_e2e"),
                                 ("intake, 2 replicas + nginx", "pg2_intake"),
                                 ("end to end, 2 replicas + nginx", "pg2_e2e")],
                          extra=[("delivered/s", lambda r: f"{r['delivered_per_s']:.0f}" if "delivered_per_s" in r else "–")]),
                ""]
        if pg["nginx_skipped_reason"]:
            out += [f"Two replicas not measured: {pg['nginx_skipped_reason']}.", ""]
    checks = [r for r in rows if r["scenario"] == "check"]
    out += ["## Exactly-once checks", "",
            "Every webhook carries its own identity and the simulator keeps one profile per identity. After the "
            "queue drained: records accepted = distinct identities = rows in the queue = rows delivered (nothing "
            "stored is lost or doubled), and the row id of every 202 wrk read is one of those rows (every 202 "
            "was stored, hence delivered once). Rows beyond the 202s read are requests in flight when wrk "
            "stopped: stored, their answer never read.", ""]
    out += [f"- {'ok' if c['ok'] else '**FAILED**'}: {c['name']} — {c['detail']}" for c in checks]
    if analysis:
        out += ["", analysis.strip()]
    out += ["", "## Reproduce", "", "```sh", meta["reproduce"], "```", "",
            "The commands it ran (ports, queue and simulator URLs vary per run):", "", "```sh"]
    out += commands + ["```", ""]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--meta", "--measurements", "--commands"):
        parser.add_argument(flag)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--analysis")
    parser.add_argument("--regenerate", action="store_true",
                        help="re-render --markdown from an existing --json (e.g. after editing bench/analysis.md)")
    args = parser.parse_args()
    if args.regenerate:
        saved = json.load(open(args.json))
        rows = saved.pop("measurements") + saved.pop("checks")
        commands = saved.pop("commands")
        for key in ("targets", "problems"):
            saved.pop(key)
        meta = saved
    else:
        meta, rows, commands = load(args)
    targets = evaluate(meta, rows)
    found = problems(meta, rows)
    analysis = ""
    if args.analysis:
        try:
            analysis = open(args.analysis).read()
        except FileNotFoundError:
            pass
    result = dict(meta)
    result["commands"] = commands
    result["measurements"] = [r for r in rows if r["scenario"] != "check"]
    result["checks"] = [r for r in rows if r["scenario"] == "check"]
    result["targets"] = [{"target": t, "measured": m, "met": met} for t, m, met in targets]
    result["problems"] = found
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(args.markdown, "w") as f:
        f.write(markdown(meta, rows, commands, targets, found, analysis if meta["mode"] == "full" else ""))
    for t, m, met in targets:
        print(f"{'met   ' if met else 'MISSED'} {t}: {m}")
    for p in found:
        print(f"PROBLEM: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
