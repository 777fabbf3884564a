"""Story clustering: which sightings tell one story, and the index of open stories."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.stories.cluster import (
    WINDOW,
    Signature,
    StoryIndex,
    same_story,
    signature,
    similarity,
    skeleton,
    stems,
    story_link,
    strip_publisher,
)
from tests.paths import REPO

T0 = datetime(2020, 1, 8, 6, 0, tzinfo=UTC)


def sig(title: str, lead: str = "", link: str | None = None, language: str = "en") -> Signature:
    return signature(title, lead, link, language)


# (title, lead) pairs; the real ones are from tests/fixtures/stories/.
SAME = [
    pytest.param(
        ("Canada to deploy up to 20 police officers to Iraq over two years", ""),
        ("Canada to send as many as 20 police officers to Iraq as part of fight against Daesh", ""),
        id="rewritten headline, same count",
    ),
    pytest.param(
        ("Canada to beef up police presence in Iraq after fall of Mosul", ""),
        ("Canada to beef up police presence in Iraq after fall of Mosul – CBC.ca", ""),
        id="publisher appended",
    ),
    pytest.param(
        (
            "63 Canadians among dead in jet crash near Tehran airport",
            "A Ukrainian Boeing-737 carrying 176 people has crashed killing all aboard.",
        ),
        (
            "Écrasement d’avion en Iran: 63 Canadiens figurent parmi les 176 personnes tuées",
            "Soixante-trois Canadiens figurent parmi les 176 victimes de l’écrasement mercredi "
            "matin en Iran d’un avion Boeing 737-800 exploité par Ukraine International Airlines.",
        ),
        id="French telling: same counts, names",
    ),
    pytest.param(
        (
            "63 Canadians among dead in jet crash near Tehran airport",
            "A Ukrainian Boeing-737 carrying 176 people has crashed killing all aboard.",
        ),
        (
            "سقوط الطائرة الأوكرانية فوق طهران، ومقتل جميع ركابها بُعيد إقلاعها",
            "وكان التلفزيون الإيراني قد أعلن أن الطائرة، التي كان على متنها 176 شخصاً، سقطت "
            "فوق العاصمة الإيرانية.",
        ),
        id="Arabic telling: Tehran, Ukrainian and 176",
    ),
    pytest.param(
        ("L’OTAN suspend sa mission de formation en Irak", ""),
        ("L'OTAN suspend sa mission de formation en Irak", ""),
        id="quotes differ",
    ),
]

BOILERPLATE = (
    "Read the full story on our website, with video and photos from our reporters in the field."
)
DIFFERENT = [
    pytest.param(
        ("RCMP officers to train Iraqi police in Mosul", ""),
        ("RCMP officers to train Ukrainian police", ""),
        id="same words, other country",
    ),
    pytest.param(
        ("RCMP to send 20 officers to train Iraqi police in Mosul", ""),
        ("RCMP to send 20 officers to train Ukrainian police", ""),
        id="same words and count, other country",
    ),
    pytest.param(
        (
            "Canadian police training mission in Iraq suspended amid turmoil",
            "The RCMP has temporarily called off its police training mission involving a dozen "
            "Canadian officers in Iraq.",
        ),
        (
            "Canadian-led NATO training mission in Iraq suspended amid security concerns",
            "Canada’s defence minister says a Canadian-led NATO training mission in Iraq has been "
            "temporarily suspended in the wake of the killing of Iranian General Qassem Soleimani.",
        ),
        id="police mission vs NATO mission, same week",
    ),
    pytest.param(
        ("NATO suspends training mission in Iraq", ""),
        ("RCMP temporarily suspends police training mission in Iraq", ""),
        id="NATO vs RCMP",
    ),
    pytest.param(
        ("Canada suspends training in Iraq till situation becomes clear", ""),
        ("NATO suspends training mission in Iraq", ""),
        id="2017 Peshmerga pause vs 2020 NATO pause",
    ),
    pytest.param(
        ("Canada increases police deployments to Ukraine", ""),
        ("Canada to deploy up to 20 police officers to Iraq over two years", ""),
        id="Ukraine vs Iraq deployments",
    ),
    pytest.param(
        ("Ontario reports 1,000 new COVID-19 cases", "Toronto and Ottawa lead the count."),
        ("Ontario schools stay shut as COVID-19 spreads", "Toronto, Ottawa: 2,000 in class."),
        id="a number in a name (COVID-19) is not a shared count, nor are thousands",
    ),
    pytest.param(
        (
            "Ontario reports 500 new cases",
            "Premier Doug Ford says Ontario hospitals can cope with 500 cases a day.",
        ),
        (
            "Ford announces $500 million for Ontario roads",
            "Premier Doug Ford says Ontario will spend 500 million dollars on highways.",
        ),
        id="same names and number, other story",
    ),
    pytest.param(
        ("RCMP update 14: officers deployed", "RCMP news release."),
        ("RCMP update 15: officers deployed", "RCMP news release."),
        id="one recurring format, each with counts the other never gives",
    ),
    pytest.param(
        ("RCMP officers deploy to Mosul", BOILERPLATE),
        ("RCMP budget tabled in Ottawa", BOILERPLATE),
        id="one boilerplate lead under two titles",
    ),
    pytest.param(
        ("Police mission in Iraq announced", BOILERPLATE),
        ("Police chief resigns after review", BOILERPLATE),
        id="one boilerplate lead, a shared word in the titles",
    ),
    pytest.param(
        ("RCMP update", "RCMP news."),
        ("RCMP opens a new detachment", "RCMP news."),
        id="two short texts sharing two words",
    ),
]


@pytest.mark.parametrize(("one", "other"), SAME)
def test_same_story(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert same_story(sig(*one), sig(*other))
    assert same_story(sig(*other), sig(*one))


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_stories(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert not same_story(sig(*one), sig(*other))
    assert not same_story(sig(*other), sig(*one))


def test_same_link_is_one_story_whatever_the_title() -> None:
    one = sig("Breaking: plane down", link="https://example.com/a?utm_source=rss")
    other = sig("Ukrainian airliner crashes near Tehran", link="HTTPS://Example.com/a#top")
    assert same_story(one, other)


def test_a_home_page_link_is_no_evidence() -> None:
    one = sig("Plane crashes near Tehran", link="https://example.com/")
    other = sig("Canada increases police deployments to Ukraine", link="https://example.com")
    assert one.link == other.link == ""
    assert not same_story(one, other)


TELLINGS = st.sampled_from(
    [
        ("Canada to send 20 police officers to Iraq", "Ottawa says 20 officers will go."),
        ("Canadian police officers arrive in Baghdad", "The RCMP officers landed in Iraq."),
        ("Plane crash in Iran: 63 Canadians among the dead", "A Boeing 737 went down."),
        ("Le Canada va envoyer des policiers en Irak", "Le Canada enverra 20 policiers."),
    ]
)
TOLD = st.one_of(st.none(), st.integers(0, 48).map(lambda h: T0 + timedelta(hours=h)))
TOPIC = st.lists(st.sampled_from(["police", "canadian police", "iraq", "officers"]), max_size=3)


@given(st.text(max_size=80), st.text(max_size=200), TELLINGS, TOLD, TOLD, TOPIC, TOPIC)
def test_similarity_is_symmetric(
    title: str,
    lead: str,
    telling: tuple[str, str],
    one_told: datetime | None,
    other_told: datetime | None,
    one_topic: list[str],
    other_topic: list[str],
) -> None:
    one = signature(title, lead, None, "en", told=one_told, topic=one_topic)
    other = signature(*telling, None, "en", told=other_told, topic=other_topic)
    assert similarity(one, other) == similarity(other, one)


@pytest.mark.parametrize(
    ("title", "stripped"),
    [
        (
            "Canada to beef up police presence in Iraq – CBC.ca",
            "Canada to beef up police presence in Iraq",
        ),
        ("Plane crashes near Tehran - The Globe and Mail", "Plane crashes near Tehran"),
        ("Plane crashes near Tehran | Reuters", "Plane crashes near Tehran"),
        ("Iran - US tensions rise", "Iran - US tensions rise"),  # too short a rest
        ("Flights resume after crash - what we know", "Flights resume after crash - what we know"),
    ],
)
def test_strip_publisher(title: str, stripped: str) -> None:
    assert strip_publisher(title) == stripped


def _google_news(url: str) -> str:
    raw = b"\x08\x13\x22" + bytes([len(url)]) + url.encode() + b"\xd2\x01\x00"
    return "https://news.google.com/rss/articles/" + base64.urlsafe_b64encode(raw).decode()


def test_google_news_links_point_at_the_article() -> None:
    target = "https://www.cbc.ca/news/politics/iraq-police-1.4222495"
    assert story_link(_google_news(target) + "?oc=5") == target
    opaque = "https://news.google.com/rss/articles/AU_yqLNotAnAddress?oc=5"
    assert story_link(opaque) == "https://news.google.com/rss/articles/AU_yqLNotAnAddress"


@pytest.mark.parametrize(
    "spellings",
    [
        ("tehran", "téhéran", "طهران"),
        ("soleimani", "سليماني", "سلیمانی"),
        ("ukraine", "ukrainian", "ukrainiens", "اوکراین", "أوكرانية"),
        ("mosul", "الموصل"),
        ("boeing", "بوئینگ"),
        ("iraq", "iraqi", "irak", "العراق", "عراق"),
    ],
)
def test_a_name_has_one_skeleton_in_each_script(spellings: tuple[str, ...]) -> None:
    from bot.text import normalize

    assert len({skeleton(normalize(s)) for s in spellings}) == 1


def test_an_arabic_word_is_one_stem_with_or_without_its_hamza() -> None:
    """Writers put or leave out the hamza on an alef: "أوكرانية" and "اوكرانية" are one word."""
    assert stems("طائرة أوكرانية") == stems("طائرة اوكرانية") == stems("الطائرة الأوكرانية")


def test_names_and_numbers_come_from_the_original_text() -> None:
    found = sig(
        "RCMP officers to train Iraqi police in Mosul",
        "OTTAWA — The police will send 20 officers. Freeland said 1,200 were trained; "
        "٢٠ more by Sûreté du Québec.",
    )
    assert {"rkmb", "rk", "msl"} <= found.title_names  # "RCMP" a name, "officers" not
    assert {"t", "srt", "kbk"} <= found.names  # OTTAWA, Sûreté, Québec
    assert "frlnd" not in found.names  # a capital opening a sentence says nothing
    assert found.numbers == {"20", "1200"}  # "1,200" one number; Arabic-Indic digits read


def test_a_title_case_title_names_only_acronyms_and_confirmed_names() -> None:
    found = sig(
        "Canada To Send 20 Policemen To Mosul In The Coming Weeks",
        "The Canadian government said police would work in the city of Mosul.",
    )
    assert found.title_names == {"msl"}  # confirmed by the lead; "Policemen", "Coming" are not


@given(
    st.text(max_size=120),
    st.text(max_size=400),
    st.one_of(st.none(), st.text(max_size=60)),
    st.one_of(st.none(), st.sampled_from(["en", "fr-CA", "ar", ""])),
)
def test_signature_round_trips_through_json(
    title: str, lead: str, link: str | None, language: str | None
) -> None:
    found = signature(title, lead, link, language)
    assert Signature.from_json(found.to_json()) == found


@given(TELLINGS, TOLD, TOPIC)
def test_a_told_signature_with_a_topic_round_trips(
    telling: tuple[str, str], told: datetime | None, topic: list[str]
) -> None:
    found = signature(*telling, None, "en", told=told, topic=topic)
    assert Signature.from_json(found.to_json()) == found


def test_a_signature_stored_before_places_times_and_topics_still_reads() -> None:
    """Rows written before those keys existed: no places, no time, no topic."""
    old = Signature.from_json(
        '{"v":1,"l":"","g":"en","t":["canad","iraq","polic"],"d":[],"tn":["knd","rk"],'
        '"n":["knd","rk"],"#":["20"],"s":[],"f":"news","t#":["20"]}'
    )
    assert (old.places, old.name_stems, old.initials, old.told, old.topic) == (
        frozenset(),
        frozenset(),
        "",
        None,
        frozenset(),
    )
    assert same_story(old, sig("Canada to send 20 police officers to Iraq"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '{"v": 1}',
        '{"v": 2, "l": ""}',
        '{"v":1,"l":"","g":"","t":[1]}',
        *(
            '{"v":1,"l":"","g":"","t":[],"d":[],"tn":[],"n":[],"#":[],"s":[],' + extra + "}"
            for extra in (
                '"p":["rk"]',
                '"p":["rk=iqq"]',
                '"ns":["knd"]',
                '"at":NaN',
                '"at":Infinity',
                '"at":true',
                '"at":"2020-01-08"',
                '"i":5',
            )
        ),
    ],
)
def test_garbage_is_not_a_signature(text: str) -> None:
    with pytest.raises(ValueError, match="not a story signature"):
        Signature.from_json(text)


@given(st.text(max_size=200))
def test_any_text_is_a_signature_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        Signature.from_json(text)


# ---------------------------------------------------------------- the index

POLICE = sig("Canada to deploy up to 20 police officers to Iraq over two years")
POLICE_AGAIN = sig(
    "Canada to send as many as 20 police officers to Iraq as part of fight against Daesh"
)
UKRAINE = sig("Canada increases police deployments to Ukraine")


def test_a_story_stays_open_for_the_window_after_its_latest_sighting() -> None:
    index = StoryIndex()
    index.add(1, POLICE, T0)
    assert index.find(POLICE_AGAIN, T0 + timedelta(hours=71)) == 1
    index.add(1, POLICE_AGAIN, T0 + timedelta(hours=71))
    later = T0 + timedelta(hours=71 + 71)
    assert index.find(POLICE, later) == 1  # the second sighting kept it open
    index.expire(later)
    assert len(index) == 1
    gone = T0 + timedelta(hours=71 + 73)
    assert index.find(POLICE, gone) is None
    index.expire(gone)
    assert len(index) == 0


def test_the_window_is_configurable() -> None:
    index = StoryIndex(window=3600)
    index.add(1, POLICE, T0)
    assert index.find(POLICE_AGAIN, T0 + timedelta(minutes=59)) == 1
    assert index.find(POLICE_AGAIN, T0 + timedelta(minutes=61)) is None
    assert WINDOW == 72 * 3600


def test_an_unrelated_story_is_not_found() -> None:
    index = StoryIndex()
    index.add(1, POLICE, T0)
    assert index.find(UKRAINE, T0) is None


def test_near_two_stories_joins_the_nearest() -> None:
    index = StoryIndex()
    index.add(1, sig("Canada to send up to 20 police officers to Iraq"), T0)
    index.add(2, sig("Canada to deploy up to 20 police officers to Iraq over two years"), T0)
    assert index.find(POLICE, T0) == 2


def test_equally_near_two_stories_joins_the_earliest() -> None:
    index = StoryIndex()
    index.add(7, POLICE, T0)
    index.add(3, POLICE, T0)
    assert index.find(POLICE, T0) == 3


def test_a_story_is_matched_through_any_of_its_sightings() -> None:
    index = StoryIndex()
    index.add(1, UKRAINE, T0)
    index.add(1, POLICE, T0)  # a sighting of story 1 told otherwise
    assert index.find(POLICE_AGAIN, T0) == 1


def test_a_long_story_keeps_its_first_and_latest_sightings() -> None:
    index = StoryIndex()
    index.add(1, POLICE, T0)
    for minute in range(100):
        index.add(1, UKRAINE, T0 + timedelta(minutes=minute))
    assert index.find(POLICE_AGAIN, T0 + timedelta(hours=1)) == 1
    assert index.find(UKRAINE, T0 + timedelta(hours=1)) == 1


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([POLICE, POLICE_AGAIN, UKRAINE])),
        max_size=30,
    ),
    st.integers(0, 200),
)
def test_only_stories_seen_within_the_window_are_found_or_kept(
    sightings: list[tuple[int, Signature]], hours_later: int
) -> None:
    index = StoryIndex()
    latest: dict[int, datetime] = {}
    for step, (story, found) in enumerate(sightings):
        at = T0 + timedelta(hours=step * 5)
        index.add(story, found, at)
        latest[story] = at
    now = T0 + timedelta(hours=len(sightings) * 5 + hours_later)
    open_stories = {s for s, at in latest.items() if now - at <= timedelta(seconds=WINDOW)}
    for probe in (POLICE, POLICE_AGAIN, UKRAINE):
        assert index.find(probe, now) in open_stories | {None}
    index.expire(now)
    assert len(index) == len(open_stories)


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        (("Цитата #17722", "", "https://q.example/17722"), ("Цитата #17357", "", None), False),
        (
            ("League update: the early leader", BOILERPLATE, None),
            ("League update: early trades", BOILERPLATE, None),
            False,
        ),
        (
            ("", "A post.", "https://blog.example/day"),
            ("", "Another post.", "https://blog.example/day"),
            False,
        ),
        (
            ("RCMP officers head to Mosul", "", "https://n.example/1"),
            ("RCMP officers head to Mosul", "", "https://n.example/1?v=2"),
            True,
        ),
    ],
    ids=[
        "a numbered format",
        "one format, other words",
        "untitled posts of one page",
        "a republished post",
    ],
)
def test_two_items_of_one_feed_tell_one_story_only_when_one_repeats_the_other(
    one: tuple[str, str, str | None], other: tuple[str, str, str | None], same: bool
) -> None:
    a, b = signature(*one, feed="f"), signature(*other, feed="f")
    assert same_story(a, b) is same and same_story(b, a) is same
    # From two feeds, the same link is one story.
    if one[2] and one[2] == other[2]:
        assert same_story(signature(*one, feed="f"), signature(*other, feed="g"))


# ---------------------------------------------------------------- places, acronyms, time


def test_a_country_is_matched_by_a_place_in_it() -> None:
    """ "Iran" on one side, "Tehran" on the other: the country is matched, the city is not
    (one side's name unmatched, so only near-copies join), and Kyiv matches neither."""
    iran = sig("Plane crash in Iran: 63 Canadians among the dead")
    tehran = sig("Dozens of Canadians among 63 dead in Tehran plane crash")
    kyiv = sig("Dozens of Canadians among 63 dead in Kyiv plane crash")
    assert "rn=ir" in iran.places and "trn@ir" in tehran.places
    assert same_story(iran, tehran)
    assert not same_story(iran, kyiv)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(
            "Canadian police to help rebuild the police force in Mosul",
            "Canadian police to help rebuild the police force in Baghdad",
            id="a capital is not another city of its country",
        ),
        pytest.param(
            "Canadian police to help rebuild the police force in Mosul",
            "Canadian police to help rebuild the police force in Basra",
            id="nor is one city another",
        ),
    ],
)
def test_cities_of_one_country_are_different_places(one: str, other: str) -> None:
    lead = "The RCMP will lead the deployment of officers to Iraq."
    assert not same_story(sig(one, lead), sig(other, lead))


@pytest.mark.parametrize(
    ("word", "mark"),
    [
        ("Canadiens", "=ca"),
        ("Irakienne", "=iq"),
        ("العراقيين", "=iq"),
        ("الإيرانية", "=ir"),
        ("Téhéran", "@ir"),
        ("طهران", "@ir"),
        ("Mossoul", "@iq"),
    ],
)
def test_a_place_is_known_in_its_forms_and_scripts(word: str, mark: str) -> None:
    assert any(p.endswith(mark) for p in signature(f"Les {word}", "", None).places)


def test_police_is_no_place() -> None:
    assert signature("Police and troops", "Officers and soldiers", None).places == frozenset()


def test_a_place_name_written_small_is_a_word() -> None:
    """ "Part" is a name for a place somewhere, "male" a spelling of Mali: written small,
    they are words."""
    assert (
        signature("Fires spread", "Residents in part of the county fled.", None).places
        == frozenset()
    )
    assert signature("Fires spread", "Residents in Part fled.", None).places != frozenset()


def test_an_acronym_is_matched_where_it_is_spelt_out() -> None:
    """Each title names a thing the other does not (DND; Camp Taji) unless the second's
    lead spells DND out: then only one side does, and near-copies join."""
    short = sig(
        "Canadian soldiers in Iraq safe after rocket attack, DND says",
        "None of the Canadians at the base was hurt.",
    )
    title = "Canadian soldiers in Iraq safe after rocket attack on Camp Taji"
    spelt = sig(title, "The Department of National Defence said all Canadians were safe.")
    assert "dnd" in spelt.initials
    assert same_story(short, spelt)
    assert not same_story(short, sig(title, "The government said all Canadians were safe."))


def test_a_french_acronym_is_matched_where_it_is_spelt_out() -> None:
    """Real tellings (tests/fixtures/stories/ukraine_police.yaml): "la GRC" / "la
    Gendarmerie royale du Canada"."""
    grc = (
        "Augmentation des déploiements de policiers de la GRC en Ukraine",
        "Au moment de renouveler son engagement à soutenir les réformes lancées en Ukraine, le"
        " gouvernement du Canada a annoncé qu'il portait à 45 le contingent des policiers"
        " canadiens qui pourraient y être déployés, soit plus du double du maximum précédent"
        " qui était fixé à 20.",
    )
    spelt = (
        "Le Canada augmente considérablement sa présence policière en Ukraine",
        "Le partenaire trans-atlantique de l’Ukraine a doublé le contingent actuel des"
        " policiers et a prolongé leur séjour dans le pays, annonce la Gendarmerie royale du"
        " Canada.",
    )
    unspelt = (spelt[0], spelt[1].replace("la Gendarmerie royale du Canada", "Ottawa"))

    def told(title: str, lead: str) -> Signature:
        return signature(title, lead, None, "fr", told=T0)

    assert "grc" in told(*spelt).initials
    assert same_story(told(*grc), told(*spelt))
    assert not same_story(told(*grc), told(*unspelt))


def test_a_name_is_mentioned_by_its_word_uncapitalised() -> None:
    """A Title Case headline's lead capitalises "US Troops"; the other says "troops" (and
    names Baghdad, which the first does not: one unmatched name is allowed, not two)."""
    shouted = sig(
        "Rockets Hit Base Housing US Troops for Second Time in Iraq",
        "Two US Troops and a British serviceman were killed in an attack on the Camp Taji base.",
    )
    plain = sig(
        "Rockets hit Iraqi base housing US troops near Baghdad for second time",
        "Rockets struck the base, the coalition said.",
    )
    assert same_story(shouted, plain)


CLOSE_ONE = ("Saskatoon police officers in Iraq safe as training program suspended", "")
CLOSE_OTHER = ("Canadian police training mission in Iraq suspended amid turmoil", "")


@pytest.mark.parametrize(
    ("hours", "joined"), [(0, True), (11.9, True), (12.1, False), (64, False), (None, False)]
)
def test_tellings_close_in_time_join_on_fewer_shared_words(
    hours: float | None, joined: bool
) -> None:
    """Wire copies and rewrites come within hours; a like event comes days later (the second
    rocket attack on Camp Taji came 64 hours after the first)."""
    later = None if hours is None else T0 + timedelta(hours=hours)
    one = signature(*CLOSE_ONE, None, "en", told=T0)
    other = signature(*CLOSE_OTHER, None, "en", told=later)
    assert same_story(one, other) is joined


# Different events in a stream about Canadian police in Iraq, with the words the shipped
# rules would match in each (the topic): told an hour apart, they share little beyond it.
TOPIC_PAIRS = [
    ("RCMP officers to train Iraqi police in Mosul", "RCMP officer hurt in Mosul blast"),
    ("Canadian police to train Iraqi officers", "Canadian police officer injured in Iraq"),
    (
        "RCMP says Canadian police in Iraq are safe after rocket attack",
        "RCMP extends Canadian police mission in Iraq by a year",
    ),
    (
        "Two Canadian police officers wounded in Iraq",
        "Two Canadian police officers honoured for Iraq service",
    ),
]
TOPIC = (
    "rcmp",
    "iraqi police",
    "canadian police",
    "police",
    "officers",
    "officer",
    "iraq",
    "mosul",
)


@pytest.mark.parametrize(("one", "other"), TOPIC_PAIRS)
def test_the_watched_topic_is_no_evidence_of_one_story(one: str, other: str) -> None:
    a, b = (signature(t, "", None, "en", told=T0, topic=TOPIC) for t in (one, other))
    assert not same_story(a, b)
    # The test can fail: unaware of the topic, the same two titles make one story.
    a, b = (signature(t, "", None, "en", told=T0) for t in (one, other))
    assert same_story(a, b)


def test_close_in_time_two_names_need_two_more_title_words() -> None:
    """Names alone do not make a story, however close in time."""

    def told(title: str, lead: str) -> Signature:
        return signature(title, lead, None, "en", told=T0)

    resigns = told("Commander resigns", "The Canadian officer had served in Iraq since May.")
    honoured = told("Commander honoured", "A Canadian medal for his service in Iraq.")
    praised = told("Commander honoured and praised", "A Canadian medal for work done in Iraq.")
    assert not same_story(resigns, honoured)
    assert same_story(honoured, praised)


_FIND_ALL = """
from datetime import UTC, datetime
from bench.workloads import corpus_items
from bot.stories.cluster import StoryIndex, signature
now = datetime(2026, 1, 1, tzinfo=UTC)
index = StoryIndex()
for number, item in enumerate(corpus_items(3000)):
    sig = signature(item.title, item.summary[:300], item.link)
    found = index.find(sig, now)
    print(number if found is None else found)
    index.add(number if found is None else found, sig, now)
"""


def test_the_index_answers_alike_whatever_the_hash_seed() -> None:
    """Replicas are processes with their own string hashing: ties among the rarest keys and
    among candidate sightings are broken by key and by sighting, never by set order (the
    synthetic corpus's wire copies make many ties)."""
    found = {
        subprocess.run(
            [sys.executable, "-c", _FIND_ALL],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(found) == 1
