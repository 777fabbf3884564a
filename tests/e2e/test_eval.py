"""`newswatch eval`: the rules scored on labelled items, every miss and false alert explained,
exit 1 under the thresholds, exit 2 and `file:line: message` for a malformed file."""

from __future__ import annotations

import json

from tests.conftest import REPO, ConfigDir, run_cli

SETTINGS = """
    store: sqlite:state.db
    feeds: [{id: news, url: 'https://news.example/rss'}]
    destinations:
      console: {type: console}
"""
RULES = """
    rules:
      - id: rcmp
        title: RCMP in Iraq
        query: 'RCMP AND (Iraq OR Mosul) NOT soldiers'
        feeds: [news]
      - id: french
        title: GRC en Irak
        query: 'GRC AND Irak'
"""
LABELLED = """
    # a miss, a false alert, a rule expected but another matched, and two right answers
    items:
      - id: right
        title: RCMP officers arrive in Baghdad
        summary: They will train police in Iraq.
        language: en
        relevant: true
        rules: [rcmp]
      - id: missed
        title: Mounties head to Mosul
        summary: Canadian officers will work with Iraqi police.
        language: en
        relevant: true
      - id: wrong-rule
        title: La GRC envoie des policiers en Irak
        summary: L'annonce vient de la RCMP.
        language: fr
        relevant: true
        rules: [rcmp]
      - id: alarm
        title: RCMP veteran remembers Iraq
        language: en
        class: veteran
        relevant: false
        source: https://news.example/veteran
      - id: quiet
        title: Hockey night in Canada
        relevant: false
"""


def _eval(cfg: ConfigDir, labelled: str, *args: str, name: str = "labelled.yaml"):
    cfg.write("settings.yaml", SETTINGS)
    cfg.write("rules.yaml", RULES)
    path = cfg.write(name, labelled)
    return run_cli("--config", str(cfg.path), "eval", str(path), *args), str(path)


def test_the_project_evaluation_set_scores_perfectly_with_the_shipped_rules() -> None:
    files = [str(REPO / "tests/fixtures/eval" / n) for n in ("positives.yaml", "near_misses.yaml")]
    result = run_cli(
        "--config", str(REPO / "config"), "eval", *files, "--min-recall=1", "--min-precision=1"
    )
    assert result.code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "88 items, 44 relevant",
        "overall: recall 1.00 (44/44), precision 1.00 (44/44)",
    ]
    assert "  language fr: recall 1.00 (10/10), precision 1.00 (10/10)" in lines
    assert "  language ar: recall 1.00 (5/5), precision 1.00 (5/5)" in lines
    assert not [line for line in lines if line.startswith(("miss", "false alert"))]


def test_reports_figures_misses_and_false_alerts_with_their_terms(config_dir: ConfigDir) -> None:
    result, path = _eval(config_dir, LABELLED)
    assert result.code == 0, result.stderr  # no thresholds given
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "5 items, 3 relevant",
        "overall: recall 0.67 (2/3), precision 0.67 (2/3)",
        "  language en: recall 0.50 (1/2), precision 0.50 (1/2)",
        "  language fr: recall 1.00 (1/1), precision 1.00 (1/1)",
        # right and wrong-rule were expected; rcmp matched right and (wrongly) false
        "  rule rcmp: recall 0.50 (1/2), precision 0.50 (1/2)",
    ]
    assert lines[5] == "  rule french: recall -, precision 1.00 (1/1)"
    assert lines[6:] == [
        f"miss: {path}:9 missed [en]: Mounties head to Mosul",
        "    rcmp: found mosul (title); missing rcmp, iraq",
        f"miss: {path}:14 wrong-rule [fr]: La GRC envoie des policiers en Irak (matched by french)",
        "    rcmp: found rcmp (summary); missing iraq, mosul",
        f"false alert: {path}:20 alarm [en, veteran]: RCMP veteran remembers Iraq",
        "    source: https://news.example/veteran",
        "    rcmp: found rcmp (title), iraq (title); missing mosul",
    ]


def test_exits_1_under_a_threshold_so_it_can_run_in_ci(config_dir: ConfigDir) -> None:
    result, _ = _eval(config_dir, LABELLED, "--min-recall", "0.6", "--min-precision", "0.9")
    assert result.code == 1
    assert "newswatch: precision 0.67 is under --min-precision 0.90" in result.stderr
    assert "recall" not in result.stderr  # 0.67 passes 0.6
    passing, _ = _eval(config_dir, LABELLED, "--min-recall", "0.6", "--min-precision", "0.6")
    assert passing.code == 0, passing.stderr


def test_json_lines(config_dir: ConfigDir) -> None:
    records = [
        {"title": "RCMP trainers in Mosul", "relevant": True, "language": "en"},
        {"title": "La GRC envoie des policiers en Irak", "relevant": False},  # no language
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    result, path = _eval(config_dir, text, "--min-precision", "0.9", name="labelled.jsonl")
    assert result.code == 1
    assert "overall: recall 1.00 (1/1), precision 0.50 (1/2)" in result.stdout
    assert "  language fr: recall -, precision 0.00 (0/1)" in result.stdout  # detected
    assert f"false alert: {path}:2 [fr]: La GRC envoie des policiers en Irak" in (result.stdout)


def test_a_malformed_file_is_every_problem_located_and_exit_2(config_dir: ConfigDir) -> None:
    bad = """
        items:
          - title: no label here
          - title: RCMP in Iraq
            relevant: yes please
          - {title: Mosul, relevant: true, rules: [nosuch]}
          - title: Irak
            relevant: false
            lang: fr
    """
    result, path = _eval(config_dir, bad)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"{path}:2: items[0]: relevant: must be true or false",
        f"{path}:4: items[1].relevant: relevant: must be true or false",
        f"{path}:5: items[2].rules: unknown rule 'nosuch' (known: french, rcmp)",
        f"{path}:6: items[3]: unknown key 'lang' (known: title, summary, content, id,"
        " relevant, language, rules, source, class)",
    ]
    assert not result.stdout


def test_a_malformed_json_line_is_located(config_dir: ConfigDir) -> None:
    result, path = _eval(
        config_dir, '{"title": "a", "relevant": true}\n{"title": \n', name="x.jsonl"
    )
    assert result.code == 2
    assert result.stderr.startswith(f"{path}:2: not JSON: Expecting value")
