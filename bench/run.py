"""Runs every scenario, prints the table, writes ``bench/results/<timestamp>.json``.

.venv/bin/python -m bench              # the default run (~2 minutes on 2 cores)
.venv/bin/python -m bench --quick      # about 30 seconds: smaller sizes, one repeat
.venv/bin/python -m bench --profile    # also the top functions per scenario (pyinstrument)
.venv/bin/python -m bench --only parse,match   # some scenarios only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.feedserver import FeedServerProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("parse", "match", "stories", "cycles", "memory", "latency")


@dataclass
class Row:
    scenario: str
    ours: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0) or self.ours != self.ours:
            return None
        return self.ours / self.baseline  # type: ignore[operator]


@dataclass
class Run:
    args: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, object] = field(default_factory=dict)
    profiles: dict[str, object] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        base = _fmt(row.baseline) if row.baseline is not None else "-"
        print(
            f"  {row.scenario}: {_fmt(row.ours)} {row.unit} (baseline {base}, {ratio})", flush=True
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------- scenarios


def scenario_parse(run: Run) -> None:
    from bench.workloads import documents, parse_feedparser, parse_ours

    print("4. parse throughput per format (feeds of 50 items)", flush=True)
    for fmt in ("rss", "atom", "json"):
        docs = documents(fmt, run.args.parse_docs)
        parse_ours(docs[:2])
        ours = [parse_ours(docs) for _ in range(run.args.repeats)]
        base = [parse_feedparser(docs) for _ in range(run.args.repeats)]
        items_ours = median([t.count * 50 / t.wall for t in ours])
        items_base = median([t.count * 50 / t.wall for t in base])
        note = (
            "feedparser 6 reads no JSON Feed (0 items): its rate is for nothing"
            if fmt == "json"
            else ""
        )
        run.raw[f"parse_{fmt}"] = {
            "ours": [t.__dict__ for t in ours],
            "feedparser": [t.__dict__ for t in base],
        }
        run.add(
            Row(
                f"parse {fmt} (ours vs plain feedparser)",
                items_ours,
                items_base,
                "items/s",
                note=note,
            )
        )
        if run.args.profile:
            from bench.profiling import profile

            with profile(f"parse {fmt}", run.profiles):  # type: ignore[arg-type]
                parse_ours(docs)


def scenario_match(run: Run) -> None:
    from bench.corpus import make_queries
    from bench.workloads import NaiveMatcher, corpus_items, match_naive, match_ours, rules_of
    from bot.rules.match import RuleSet

    print(f"3. matching throughput over {run.args.match_items:,} items", flush=True)
    items = corpus_items(run.args.match_items)
    targets = {1000: 100_000, 10000: 50_000}
    rates: dict[int, float] = {}
    for count in run.args.rule_counts:
        rules = rules_of(count)
        w = time.perf_counter()
        ruleset = RuleSet(rules)
        build = time.perf_counter() - w
        match_ours(ruleset, items[: min(len(items), 500)])  # warm the token caches
        # Every item, unless a pass would exceed the budget (then the items done in it).
        rates_k, matches, done = [], 0, 0
        for _ in range(run.args.repeats):
            wall, _cpu, matches, done = match_ours(ruleset, items, run.args.match_budget)
            rates_k.append(done / wall)
        rate = median(rates_k)
        rates[count] = rate
        naive = match_naive(NaiveMatcher(make_queries(count)), items, budget=run.args.naive_budget)
        target = targets.get(count)
        run.raw[f"match_{count}"] = {
            "rates": rates_k,
            "build_seconds": build,
            "items_per_pass": done,
            "matches_per_item": matches / done,
            "naive": naive.__dict__,
        }
        run.add(
            Row(
                f"match {count:,} rules",
                rate,
                naive.rate,
                "items/s",
                f">= {target:,}" if target else "",
                rate >= target if target else None,
                f"{matches / done:.2f} matches/item over {done:,} items; "
                f"RuleSet built in {build:.2f}s",
            )
        )
        if run.args.profile and count in (1000, 10000):
            from bench.profiling import profile

            with profile(f"match {count} rules", run.profiles):  # type: ignore[arg-type]
                match_ours(ruleset, items, run.args.match_budget)
    counts = sorted(rates)
    if len(counts) >= 2:
        lo, hi = counts[0], counts[-1]
        exponent = _slope(lo, rates[lo] ** -1, hi, rates[hi] ** -1)
        run.add(
            Row(
                f"match cost growth, {lo:,} -> {hi:,} rules (cost ~ rules^k)",
                exponent,
                None,
                "k",
                "< 1 (sub-linear)",
                exponent < 1,
            )
        )


def scenario_stories(run: Run) -> None:
    from bench.stories import measure

    print("7. story clustering per item, beside matching it (100 rules)", flush=True)
    costs = measure(probes=run.args.story_probes, repeats=run.args.repeats)
    run.raw["stories"] = [c.__dict__ for c in costs]
    few, many = costs[0], costs[-1]
    run.add(
        Row(
            f"story clustering per clustered item, {many.open_stories:,} open stories",
            many.cluster_us,
            many.match_us,
            "us/item (baseline: RuleSet.match, 100 rules)",
            note=f"signature() alone {many.signature_us:.0f} us; "
            f"{many.joined_share:.0%} joined an open story",
        )
    )
    run.add(
        Row(
            "story clustering per polled item (matched items only) / matching",
            many.per_polled_item,
            None,
            "x",
            "<= 0.1",
            many.per_polled_item <= 0.1,
            f"{many.matched_share:.2%} of items matched a rule",
        )
    )
    growth = _slope(few.open_stories, few.cluster_us, many.open_stories, many.cluster_us)
    run.add(
        Row(
            f"clustering cost growth, {few.open_stories:,} -> {many.open_stories:,} open stories "
            "(cost ~ stories^k)",
            growth,
            None,
            "k",
            "< 0.5 (sub-linear)",
            growth < 0.5,
        )
    )


def _slope(x1: float, y1: float, x2: float, y2: float) -> float:
    import math

    return math.log(y2 / y1) / math.log(x2 / x1)


def _child(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", "wrap", "--", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"child {args} failed: {proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("exit"):
        raise RuntimeError(f"child {args} failed: {result}")
    return result


def _child_args(run: Run, server: FeedServerProcess) -> list[str]:
    """What every cycle child needs: the feed server, and the run's rules and changed share."""
    a = run.args
    return [
        "--port",
        str(server.port),
        "--hosts",
        str(server.hosts),
        "--rules",
        str(a.rules),
        "--share",
        str(a.share),
    ]


def scenario_cycles(run: Run, server: FeedServerProcess) -> None:
    a = run.args
    common = _child_args(run, server)
    print(
        f"1+2. poll cycles over {a.feeds:,} feeds, {a.rules} rules "
        f"(a child process; {a.steady} steady cycles)",
        flush=True,
    )
    server.reset()
    ours = _child(
        [
            "cycles",
            "--feeds",
            str(a.feeds),
            "--steady",
            str(a.steady),
            *common,
            *(["--profile"] if a.profile else []),
        ]
    )
    print(f"   naive loop over {a.naive_feeds} feeds (a sample: it is sequential)", flush=True)
    server.reset()
    naive = _child(["naive", "--feeds", str(a.naive_feeds), "--steady", str(a.steady), *common])
    run.raw["cycles"] = ours
    run.raw["naive"] = naive
    if "profile" in ours:
        for kind, rows in ours["profile"].items():  # type: ignore[union-attr]
            run.profiles[f"{kind} cycle"] = rows
    first = [c for c in ours["cycles"] if c["kind"] == "first"]  # type: ignore[union-attr]
    steady = [c for c in ours["cycles"] if c["kind"] == "steady"]  # type: ignore[union-attr]
    nfirst, nsteady = naive["cycles"][0], naive["cycles"][1:]  # type: ignore[index]
    rate = median([c["count"] / c["wall"] for c in first])
    base = median([c["count"] / c["wall"] for c in [nfirst]])
    run.add(
        Row(
            f"1. first cycle, {a.feeds:,} new feeds",
            rate,
            base,
            "feeds/s",
            ">= 250",
            rate >= 250,
            f"{first[0]['cpu']:.1f}s CPU for {first[0]['wall']:.1f}s wall",
        )
    )
    cores = os.cpu_count() or 1
    s_wall = median([c["count"] / c["wall"] for c in steady])
    s_cpu = median([c["count"] / c["cpu"] for c in steady])
    b_wall = median([c["count"] / c["wall"] for c in nsteady])
    b_cpu = median([c["count"] / c["cpu"] for c in nsteady])
    run.add(
        Row(
            f"2. steady cycle, {a.feeds:,} feeds, {a.share:.0%} changed (wall)",
            s_wall,
            b_wall,
            "feeds/s",
            f">= {1000 * cores:,} ({cores} cores)",
            s_wall >= 1000 * cores,
            f"alerts per cycle: {median([c['alerts'] for c in steady]):.0f}",
        )
    )
    run.add(
        Row(
            "2. steady cycle, per core (feeds per CPU second)",
            s_cpu,
            b_cpu,
            "feeds/CPU-s",
            ">= 1,000",
            s_cpu >= 1000,
        )
    )
    mb = ours["ru_maxrss_kb"] / 1024  # type: ignore[operator]
    run.add(
        Row(
            f"5. peak RSS, {a.feeds:,} feeds (first + steady cycles)",
            mb,
            naive["ru_maxrss_kb"] / 1024,
            "MB",  # type: ignore[operator]
            note=f"baseline: naive loop over {a.naive_feeds} feeds",
        )
    )
    run.raw["steady_rate_small"] = s_cpu


def _seeded(feeds: int, common: list[str]) -> dict[str, object]:
    """Seed a store in one process, then measure a steady cycle over it in another."""
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:{folder}/seeded.db"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.child",
                "seed",
                "--feeds",
                str(feeds),
                "--store",
                store,
                *common,
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return _child(["cycles", "--feeds", str(feeds), "--steady", "1", "--store", store, *common])


def scenario_memory(run: Run, server: FeedServerProcess) -> None:
    a = run.args
    print(
        f"5. memory and steady state at {a.big_feeds:,} feeds (a child process, store seeded "
        "through the Store API)",
        flush=True,
    )
    server.reset()
    common = _child_args(run, server)
    big = _seeded(a.big_feeds, common)
    server.reset()
    small = _seeded(a.feeds, common)
    run.raw["memory"] = {"big": big, "small": small}
    mb = big["ru_maxrss_kb"] / 1024  # type: ignore[operator]
    run.add(
        Row(
            f"5. peak RSS, {a.big_feeds:,} feeds (seeded store, steady cycle)",
            mb,
            small["ru_maxrss_kb"] / 1024,
            "MB",
            "< 200",
            mb < 200,  # type: ignore[operator]
            f"baseline: the same at {a.feeds:,} feeds",
        )
    )
    big_c, small_c = big["cycles"][0], small["cycles"][0]  # type: ignore[index]
    per_big = big_c["cpu"] / big_c["count"]
    per_small = small_c["cpu"] / small_c["count"]
    run.add(
        Row(
            f"steady CPU per feed, {a.big_feeds:,} vs {a.feeds:,} feeds (linear = 1.0)",
            per_big / per_small,
            None,
            "ratio",
            "~1.0 (linear in feeds)",
            0.7 <= per_big / per_small <= 1.3,
            f"{big_c['count'] / big_c['wall']:.0f} feeds/s wall at {a.big_feeds:,}",
        )
    )


def scenario_latency(run: Run, server: FeedServerProcess) -> None:
    from bench.latency import measure

    a = run.args
    print(
        f"6. item -> Slack latency (python -m bot run, {a.latency_feeds} feeds, "
        f"interval {a.interval:g}s, {a.probes} probes)",
        flush=True,
    )
    result = measure(
        server,
        feeds=a.latency_feeds,
        interval=a.interval,
        probes=a.probes,
        background_rules=a.rules,
    )
    run.raw["latency"] = result
    lat = result["latencies"]  # type: ignore[assignment]
    med, worst = median(lat), max(lat)  # type: ignore[arg-type]
    bound = a.interval + 2
    run.add(
        Row(
            "6. item -> Slack, median (worst)",
            med,
            None,
            "s",
            f"<= {bound:g} (interval+2)",
            worst <= bound,
            f"worst {worst:.2f}s of {len(lat)}",
        )
    )  # type: ignore[arg-type]


# ---------------------------------------------------------------- output


def table(run: Run) -> str:
    header = ("scenario", "ours", "baseline", "ratio", "unit", "target", "met?")
    rows = [header]
    for r in run.rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        rows.append((r.scenario, _fmt(r.ours), _fmt(r.baseline), ratio, r.unit, r.target, met))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.scenario}: {r.note}" for r in run.rows if r.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def profiles_text(run: Run) -> str:
    out = []
    for name, rows in run.profiles.items():
        out.append(f"-- {name}: top functions by own time")
        functions = [r for r in rows if not r.get("package")]  # type: ignore[union-attr]
        packages = [r for r in rows if r.get("package")]  # type: ignore[union-attr]
        for r in functions[:10]:
            out.append(
                f"   {r['share']:6.1%}  {r['seconds']:8.3f}s  {r['function']}  "
                f"({r['file']}:{r['line']})"
            )
        if packages:
            out.append(
                "   by package: " + ", ".join(f"{r['file']} {r['share']:.0%}" for r in packages[:8])
            )
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about 30 seconds: small sizes")
    p.add_argument("--profile", action="store_true", help="pyinstrument: top functions")
    p.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    p.add_argument("--feeds", type=int, help="feeds in the cycle scenarios (default 2000)")
    p.add_argument("--big-feeds", type=int, help="feeds of the memory scenario (default 10000)")
    p.add_argument("--share", type=float, default=0.1, help="share of feeds changing per cycle")
    p.add_argument("--rules", type=int, default=100, help="rules in the cycle scenarios")
    p.add_argument("--latency-ms", type=float, default=10.0, help="server latency per answer")
    p.add_argument("--repeats", type=int)
    p.add_argument("--steady", type=int, help="steady cycles measured (median)")
    p.add_argument("--output", type=Path, help="JSON path (default bench/results/<ts>.json)")
    a = p.parse_args(argv)
    quick = a.quick
    a.feeds = a.feeds or (300 if quick else 2000)
    a.big_feeds = a.big_feeds or (1500 if quick else 10000)
    a.repeats = a.repeats or (1 if quick else 3)
    a.steady = a.steady or (1 if quick else 3)
    a.naive_feeds = 30 if quick else 150
    a.parse_docs = 5 if quick else 20
    a.match_items = 2000 if quick else 10000
    a.story_probes = 500 if quick else 2000
    a.rule_counts = (10, 100, 1000) if quick else (10, 100, 1000, 10000)
    a.naive_budget = 0.3 if quick else 1.0
    a.match_budget = 3.0 if quick else 10.0
    a.latency_feeds = 50 if quick else 300
    a.interval = 3.0 if quick else 5.0
    a.probes = 2 if quick else 6
    a.scenarios = [s.strip() for s in a.only.split(",") if s.strip()]
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    started = time.monotonic()
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"commit {info['commit']}, load average {info['loadavg_at_start'][0]:.2f}",
        flush=True,
    )
    if info["loadavg_at_start"][0] > 0.5:  # type: ignore[index]
        print(
            "warning: the machine is busy; wall-clock figures will be low (CPU-time ones less)",
            flush=True,
        )
    from bench.workloads import warm_up

    warm_up()
    if "parse" in args.scenarios:
        scenario_parse(run)
    if "match" in args.scenarios:
        scenario_match(run)
    if "stories" in args.scenarios:
        scenario_stories(run)
    needs_server = {"cycles", "memory", "latency"} & set(args.scenarios)
    if needs_server:
        feeds = max(
            args.feeds, args.big_feeds if "memory" in args.scenarios else 0, args.latency_feeds
        )
        with FeedServerProcess(feeds, latency=args.latency_ms / 1000) as server:
            if "cycles" in args.scenarios:
                scenario_cycles(run, server)
            if "memory" in args.scenarios:
                scenario_memory(run, server)
            if "latency" in args.scenarios:
                scenario_latency(run, server)
    elapsed = time.monotonic() - started
    info["loadavg_at_end"] = os.getloadavg()
    print()
    print(table(run))
    if run.profiles:
        print()
        print(profiles_text(run))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.output or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps(
            {
                "machine": info,
                "started": datetime.now(UTC).isoformat(),
                "seconds": elapsed,
                "settings": {k: v for k, v in vars(args).items() if k != "output"},
                "rows": [{**r.__dict__, "ratio": r.ratio} for r in run.rows],
                "profiles": run.profiles,
                "raw": run.raw,
            },
            indent=1,
            default=str,
        )
    )
    print(f"\nresults: {path}  ({elapsed:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
