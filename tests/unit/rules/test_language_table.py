"""The rule language, one row per behaviour: query, item text, whether it matches.

Text before `//` is the title, after it the summary. Rules search the title
and summary (and content, empty here) unless the query scopes a field.
"""

from __future__ import annotations

import pytest

from bot.config.schema import Rule
from bot.model import Item
from bot.rules.match import RuleSet

TABLE = r"""
# whole tokens, case, accents
police                          ¦ Police officers                         ¦ yes
police                          ¦ POLICE                                  ¦ yes
police                          ¦ policeman                               ¦ no
police                          ¦ the police.                             ¦ yes
police                          ¦ (police)                                ¦ yes
police                          ¦ police's                                ¦ yes
police                          ¦ police_force                            ¦ yes
police                          ¦ polices                                 ¦ no
police                          ¦ poli ce                                 ¦ no
Police                          ¦ police                                  ¦ yes
POLICE                          ¦ police                                  ¦ yes
surete                          ¦ Sûreté                                  ¦ yes
Sûreté                          ¦ SURETE                                  ¦ yes
Sûreté                          ¦ surete                                  ¦ yes
quebec                          ¦ Québec                                  ¦ yes
québec                          ¦ QUÉBEC                                  ¦ yes
irak                            ¦ l'Irak                                  ¦ yes
irak                            ¦ l’Irak                                  ¦ yes
irak                            ¦ d'Irak                                  ¦ yes
mossoul                         ¦ « Mossoul »                             ¦ yes
mossoul                         ¦ Mossoul,                                ¦ yes
strasse                         ¦ Straße                                  ¦ yes
rcmp                            ¦ ＲＣＭＰ                                  ¦ yes
iraq                            ¦ IRAQ                                    ¦ yes
iraq                            ¦ Iraqi                                   ¦ no
iraqi                           ¦ Iraq                                    ¦ no
2017                            ¦ in 2017,                                ¦ yes
2017                            ¦ 20170                                   ¦ no
20                              ¦ up to 20 officers                       ¦ yes
20                              ¦ 2020                                    ¦ no
lodz                            ¦ Łódź                                    ¦ yes
oresund                         ¦ Øresund                                 ¦ yes
ete                             ¦ e\u0301te\u0301                          ¦ yes
ёлка                            ¦ Елка                                    ¦ yes
αθηνα                           ¦ Αθήνα                                   ¦ yes
الموصل                          ¦ الْمَوْصِلُ                                ¦ yes
شرطة                            ¦ شرطـــة                                 ¦ yes
الموصل                          ¦ بالموصل                                 ¦ no
東京                            ¦ 東京 警察                               ¦ yes
警察                            ¦ 東京 警察                               ¦ yes
# prefixes
train*                          ¦ training                                ¦ yes
train*                          ¦ train                                   ¦ yes
train*                          ¦ Trainers                                ¦ yes
train*                          ¦ retrain                                 ¦ no
train*                          ¦ trai                                    ¦ no
po*                             ¦ Police                                  ¦ yes
po*                             ¦ apolitical                              ¦ no
mount*                          ¦ Mounties                                ¦ yes
mount*                          ¦ Mountie’s                               ¦ yes
polic*                          ¦ policiers                               ¦ yes
polic*                          ¦ policy                                  ¦ yes
polic*                          ¦ Policière                               ¦ yes
irak*                           ¦ irakiennes                              ¦ yes
"police train*"                 ¦ police trainers                         ¦ yes
"police train*"                 ¦ police officers training                ¦ no
anti-terr*                      ¦ anti-terrorism                          ¦ yes
anti-terr*                      ¦ anti terror                             ¦ yes
anti-terr*                      ¦ antiterror                              ¦ no
# phrases and words that split into several tokens
"Canadian police"               ¦ Canadian police officers                ¦ yes
"Canadian police"               ¦ Canadian provincial police              ¦ no
"Canadian police"               ¦ police Canadian                         ¦ no
"Canadian police"               ¦ canadian-police                         ¦ yes
"police police"                 ¦ police                                  ¦ no
"police police"                 ¦ police // police                        ¦ no
"police police"                 ¦ military police police                  ¦ yes
"Canadian police"               ¦ Canadian, police                        ¦ yes
"Canadian police"               ¦ Canadian // police                      ¦ no
"Sûreté du Québec"              ¦ la Surete du Quebec                     ¦ yes
"Sûreté du Québec"              ¦ Sûreté de Québec                        ¦ no
anti-terror                     ¦ anti terror unit                        ¦ yes
anti-terror                     ¦ anti-terror unit                        ¦ yes
anti-terror                     ¦ antiterror                              ¦ no
anti-terror                     ¦ terror anti                             ¦ no
PTF-Iraq                        ¦ PTF–Iraq expands                        ¦ yes
PTF-Iraq                        ¦ PTF Iraq                                ¦ yes
"police task force"             ¦ Police Task Force – Iraq                ¦ yes
"  police  "                    ¦ police                                  ¦ yes
"a b a"                         ¦ a b a b a                               ¦ yes
"a b a"                         ¦ a b b a                                 ¦ no
"l'Irak"                        ¦ l’Irak                                  ¦ yes
e-mail                          ¦ e mail                                  ¦ yes
# implicit AND, AND, OR
police iraq                     ¦ police in Iraq                          ¦ yes
police iraq                     ¦ police                                  ¦ no
police iraq                     ¦ Iraq // police                          ¦ yes
police AND iraq                 ¦ Iraq police                             ¦ yes
police AND iraq                 ¦ Iraq                                    ¦ no
police OR iraq                  ¦ Iraq                                    ¦ yes
police OR iraq                  ¦ police                                  ¦ yes
police OR iraq                  ¦ army                                    ¦ no
a b OR c                        ¦ c                                       ¦ yes
a b OR c                        ¦ a b                                     ¦ yes
a b OR c                        ¦ a                                       ¦ no
a b OR c                        ¦ b                                       ¦ no
a OR b c                        ¦ a                                       ¦ yes
a OR b c                        ¦ b                                       ¦ no
a OR b c                        ¦ a c                                     ¦ yes
a OR b c                        ¦ b c                                     ¦ yes
a AND b OR c AND d              ¦ a b                                     ¦ yes
a AND b OR c AND d              ¦ c d                                     ¦ yes
a AND b OR c AND d              ¦ a d                                     ¦ no
(a OR b) c                      ¦ b c                                     ¦ yes
(a OR b) c                      ¦ a                                       ¦ no
(a OR b) (c OR d)               ¦ b d                                     ¦ yes
(a OR b) (c OR d)               ¦ a b                                     ¦ no
((a))                           ¦ a                                       ¦ yes
((a OR (b c)))                  ¦ c b                                     ¦ yes
# lower-case operators are words
police and iraq                 ¦ police iraq                             ¦ no
police and iraq                 ¦ police and iraq                         ¦ yes
police or iraq                  ¦ police                                  ¦ no
police or iraq                  ¦ police or iraq                          ¦ yes
police not army                 ¦ police army                             ¦ no
police not army                 ¦ police not army                         ¦ yes
Police And Iraq                 ¦ police and iraq                         ¦ yes
near iraq                       ¦ near Iraq                               ¦ yes
# NOT and -term
police NOT army                 ¦ police                                  ¦ yes
police NOT army                 ¦ police and army                         ¦ no
police NOT army                 ¦ police // army                          ¦ no
police NOT army                 ¦ police armies                           ¦ yes
police -army                    ¦ police                                  ¦ yes
police -army                    ¦ army police                             ¦ no
police -"Iraqi army"            ¦ police and Iraqi army                   ¦ no
police -"Iraqi army"            ¦ police, Iraqi and army                  ¦ yes
police -(army OR troops)        ¦ police troops                           ¦ no
police -(army OR troops)        ¦ police                                  ¦ yes
police NOT (army troops)        ¦ police army                             ¦ yes
police NOT (army troops)        ¦ police army troops                      ¦ no
police NOT NOT army             ¦ police army                             ¦ yes
police NOT NOT army             ¦ police                                  ¦ no
NOT army police                 ¦ police                                  ¦ yes
NOT army police                 ¦ army police                             ¦ no
police -train*                  ¦ police training                         ¦ no
police -train*                  ¦ police strain                           ¦ yes
a OR b NOT c                    ¦ b c                                     ¦ no
a OR b NOT c                    ¦ a c                                     ¦ yes
NOT a b OR c                    ¦ a c                                     ¦ yes
NOT a b OR c                    ¦ a b                                     ¦ no
police anti-terror              ¦ police anti terror                      ¦ yes
police-army                     ¦ police army                             ¦ yes
# NEAR
police NEAR/2 iraq              ¦ police in Iraq                          ¦ yes
police NEAR/2 iraq              ¦ Iraq police                             ¦ yes
police NEAR/2 iraq              ¦ police sent to Iraq                     ¦ no
police NEAR/3 iraq              ¦ police sent to Iraq                     ¦ yes
police NEAR/1 iraq              ¦ police Iraq                             ¦ yes
police NEAR/1 iraq              ¦ police, Iraq                            ¦ yes
police NEAR/1 iraq              ¦ police in Iraq                          ¦ no
police NEAR/5 iraq              ¦ police // Iraq                          ¦ no
police NEAR/5 iraq              ¦ police x x x x x x Iraq ... police Iraq ¦ yes
police NEAR/5 train*            ¦ police will soon be trained             ¦ yes
police NEAR/5 train*            ¦ trainers for the local police           ¦ yes
police NEAR/5 train*            ¦ police a b c d e f trained              ¦ no
"Canadian police" NEAR/2 Iraq   ¦ Canadian police in Iraq                 ¦ yes
"Canadian police" NEAR/2 Iraq   ¦ Iraq gets Canadian police               ¦ yes
"Canadian police" NEAR/1 Iraq   ¦ Iraq gets Canadian police               ¦ no
"Canadian police" NEAR/2 Iraq   ¦ Canadian army and Iraq police           ¦ no
"a b" NEAR/1 "b c"              ¦ a b c                                   ¦ yes
police NEAR/3 (iraq OR mosul)   ¦ police in Mosul                         ¦ yes
police NEAR/3 (iraq OR mosul)   ¦ police in Baghdad                       ¦ no
(rcmp OR opp) NEAR/3 (iraq OR mosul) ¦ OPP in Mosul                       ¦ yes
(rcmp OR opp) NEAR/3 (iraq OR mosul) ¦ OPP and RCMP near Mosul            ¦ yes
(rcmp OR opp) NEAR/3 (iraq OR mosul) ¦ RCMP far from x x x Mosul          ¦ no
police NEAR/3 iraq army         ¦ police in Iraq army                     ¦ yes
police NEAR/3 iraq army         ¦ police in Iraq                          ¦ no
police NEAR/3 iraq OR army      ¦ army                                    ¦ yes
NOT army police NEAR/3 iraq     ¦ police in Iraq                          ¦ yes
NOT army police NEAR/3 iraq     ¦ army police in Iraq                     ¦ no
title:police NEAR/3 title:iraq  ¦ police in Iraq                          ¦ yes
title:police NEAR/3 title:iraq  ¦ police // Iraq                          ¦ no
title:police NEAR/3 iraq        ¦ Iraq // police in Iraq                  ¦ no
police NEAR/3 iraq              ¦ Iraq // police in Iraq                  ¦ yes
# fields
title:police                    ¦ police                                  ¦ yes
title:police                    ¦ Iraq // police                          ¦ no
summary:police                  ¦ Iraq // police                          ¦ yes
summary:police                  ¦ police // Iraq                          ¦ no
content:police                  ¦ police // police                        ¦ no
title:(police iraq)             ¦ police Iraq                             ¦ yes
title:(police iraq)             ¦ police // Iraq                          ¦ no
title:(police OR iraq) army     ¦ Iraq // army                            ¦ yes
title:(police OR iraq) army     ¦ army // Iraq                            ¦ no
title:"Canadian police"         ¦ Canadian police                         ¦ yes
title:"Canadian police"         ¦ x // Canadian police                    ¦ no
title:train*                    ¦ Trainers                                ¦ yes
title:(a summary:b)             ¦ a // b                                  ¦ yes
title:(a summary:b)             ¦ a b                                     ¦ no
police -title:army              ¦ police // army                          ¦ yes
police -title:army              ¦ army // police                          ¦ no
# regexes: RE2, case-insensitive, on normalized text
/mos+oul/                       ¦ Mossoul                                 ¦ yes
/mos+oul/                       ¦ Mosul                                   ¦ no
/MOSSOUL/                       ¦ mossoul                                 ¦ yes
/surete du quebec/              ¦ SÛRETÉ DU QUÉBEC                        ¦ yes
/polic(e|iers?)\b/              ¦ les policiers                           ¦ yes
/polic(e|iers?)\b/              ¦ policy                                  ¦ no
/\bpol/                         ¦ apolitical                              ¦ no
/\bpol/                         ¦ politics                                ¦ yes
/\d{4}/ police                  ¦ police in 2017                          ¦ yes
/\d{4}/ police                  ¦ police in 17                            ¦ no
/a\/b/                          ¦ a/b                                     ¦ yes
/a\/b/                          ¦ a b                                     ¦ no
title:/iraq/                    ¦ x // Iraq                               ¦ no
title:/iraq/                    ¦ Iraq                                    ¦ yes
/iraq/ NOT army                 ¦ Iraq army                               ¦ no
/كند/                           ¦ الكندية                                 ¦ yes
/الموصل/                        ¦ بالمَوصِل                                ¦ yes
police OR /mossoul/             ¦ Mossoul                                 ¦ yes
police -/arm(y|ies)/            ¦ police armies                           ¦ no
# punctuation-only words are ignored
police & iraq                   ¦ police iraq                             ¦ yes
police – iraq                   ¦ police iraq                             ¦ yes
police - iraq                   ¦ police iraq                             ¦ yes
"""


def _rows() -> list[tuple[str, str, str, bool]]:
    rows = []
    for line in TABLE.strip().splitlines():
        if line.startswith("#"):
            continue
        query, text, expected = (part.strip() for part in line.split("¦"))
        text = (
            text.encode("ascii", "backslashreplace").decode("unicode_escape")
            if "\\u" in text
            else text
        )
        title, _, summary = text.partition("//")
        rows.append((query, title.strip(), summary.strip(), expected == "yes"))
    return rows


ROWS = _rows()


def test_the_table_is_large() -> None:
    assert len(ROWS) >= 200


@pytest.mark.parametrize(("query", "title", "summary", "expected"), ROWS)
def test_language(query: str, title: str, summary: str, expected: bool) -> None:
    rule = Rule(id="r", title="t", query=query, fields=("title", "summary"))
    item = Item(feed_id="f", key="k", title=title, summary=summary)
    assert bool(RuleSet([rule]).match(item)) is expected


@pytest.mark.parametrize(("query", "title", "summary", "expected"), ROWS)
def test_language_in_a_big_rule_set(query: str, title: str, summary: str, expected: bool) -> None:
    """The same row among many unrelated rules: trigger selection must not change it."""
    rule = Rule(id="r", title="t", query=query, fields=("title", "summary"))
    others = [Rule(id=f"o{i}", title="t", query=f"zz{i} OR x{i}*") for i in range(50)]
    item = Item(feed_id="f", key="k", title=title, summary=summary)
    matched = [m.rule_id for m in RuleSet([*others, rule]).match(item)]
    assert ("r" in matched) is expected
