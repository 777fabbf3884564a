"""Language detection on real news headlines, and how a feed's declared language counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.config.yamlfile import read_tree
from bot.feeds.language import CONFIDENT, detect, item_language
from bot.feeds.parse import parse_feed
from bot.languages import NAMES, check_code, language_name, primary_code

FIXTURE = Path(__file__).parents[2] / "fixtures" / "language" / "headlines.yaml"


def headlines() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = read_tree(FIXTURE.read_text(encoding="utf-8"))["items"]
    return items


def variety(item: dict[str, Any]) -> str:
    return str(item.get("variety") or item["language"])


def test_the_fixture_has_ten_sourced_headlines_per_language() -> None:
    items = headlines()
    assert all(item["source"] and item["title"] for item in items)
    counts = Counter(variety(item) for item in items)
    assert counts == dict.fromkeys(
        ("en", "fr", "ar", "fa", "ckb", "kmr", "ru", "it", "es", "de"), 10
    )


@pytest.mark.parametrize(
    "item", headlines(), ids=lambda item: f"{variety(item)}:{item['title'][:30]}"
)
def test_every_real_headline_is_read_in_its_language(item: dict[str, Any]) -> None:
    assert item_language(item["title"], item.get("summary", "")) == item["language"]


def test_both_written_kurdish_varieties_are_kurdish() -> None:
    sorani = "ئەمە حکومەتی هەرێمی کوردستانە، نە حکومەتی هەولێر"
    kurmanji = "Serokwezîrê Iraqê fermanek di berjewendiya cotkarên Kurd de der kir"
    assert detect(sorani).language == detect(kurmanji).language == "ku"


def test_sorani_that_the_model_takes_for_persian_is_kurdish_by_its_letters() -> None:
    # The model reads this real headline (xwakurk.com) as Persian, with a score of 0.9.
    headline = "شاندێكی باڵا له حكومهت به سهرۆكایهتی نێچیرڤان بارزانی گهیشته پهرلهمانی كوردستان"
    assert detect(headline).language == "ku"
    assert detect("سخنگوی دولت گفت: علم با اخلاق راهگشاست.").language == "fa"


def test_text_without_letters_has_no_language() -> None:
    assert detect("12:30 — 2,9 % ★★★").language is None
    assert item_language("", "", None) is None
    assert item_language("2026", "", "fr-CA") == "fr"


def test_a_confident_detection_wins_over_a_wrong_declaration() -> None:
    title = "Le Canada va envoyer des policiers en Irak pour assurer la stabilité"
    assert detect(title).score >= CONFIDENT
    assert item_language(title, "", declared="en-US") == "fr"


def test_an_unsure_detection_gives_way_to_the_declaration() -> None:
    title = "Mossoul 2017"  # names and numbers: any language's
    guess = detect(title)
    assert guess.score < CONFIDENT
    assert item_language(title, "", declared="fr-CA") == "fr"
    assert item_language(title, "", declared=None) == guess.language


def test_only_iso_639_1_declarations_count() -> None:
    assert primary_code("fr-CA") == primary_code("FR_ca") == "fr"
    assert primary_code("x-klingon") is None
    assert primary_code("English") is None
    assert primary_code("") is None


def test_codes_and_names() -> None:
    assert language_name("fr") == "French" and language_name("ku") == "Kurdish"
    assert language_name("lrc") == "lrc"
    assert check_code("fa") == "fa"
    with pytest.raises(ValueError, match="not an ISO 639-1 language code"):
        check_code("fre")
    assert len(NAMES) == 184


RSS = """<rss version="2.0"><channel><title>t</title><language>{declared}</language>
<item><guid>1</guid><title>{title}</title><description>x</description></item>
</channel></rss>"""


def test_an_rss_language_is_the_hint_for_its_items() -> None:
    items = parse_feed(
        RSS.format(declared="fr", title="12:30").encode(), feed_id="f", url="https://x.example/"
    ).items
    assert items[0].language == "fr"
    english = RSS.format(declared="fr", title="Canada will send twenty police officers to Iraq")
    items = parse_feed(english.encode(), feed_id="f", url="https://x.example/").items
    assert items[0].language == "en"


def test_atom_xml_lang_and_json_feed_language_are_hints() -> None:
    atom = """<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de"><title>t</title>
    <entry xml:lang="it"><id>a</id><title>2026</title></entry>
    <entry><id>b</id><title>2027</title></entry></feed>"""
    items = parse_feed(atom.encode(), feed_id="f", url="https://x.example/").items
    assert [i.language for i in items] == ["it", "de"]
    json_feed = """{"version": "https://jsonfeed.org/version/1.1", "title": "t",
    "language": "es", "items": [{"id": "1", "title": "2026", "language": "ar"},
    {"id": "2", "title": "2027"}]}"""
    items = parse_feed(json_feed.encode(), feed_id="f", url="https://x.example/").items
    assert [i.language for i in items] == ["ar", "es"]
