"""The kind of an item whose source does not say: a documented rule over its words.

Rule, applied to the item's title, summary and call to action (never to the
whole body, where words such as "report" turn up in passing):

1. tribute, when the words announce a death or honour a person: a phrase that
   says so on its own (`_TRIBUTE`: "in memory of", "has left us", "our
   condolences", "farewell to", "rest in peace", "nous a quittés", "nos deja",
   "скончалась", "не стало"…), or a plain word for dying ("died", "passed",
   "death of", "décès", "murió", "умер"…) together with a word of grief or
   closeness ("sad", "friend", "colleague", "founder", "tristesse", "compañera",
   "скорбим", "друг"…), so that "three people died in custody" stays news;
2. else the kind named by the call to action ("Read the full report" → report,
   "Download the statement" → statement): the link says what it leads to;
3. else the kind whose words come first in the title, else in the summary:
   statement — a statement, open or joint letter, communiqué, submission,
   position paper, appeal or petition, or the voice of one ("we call on", "we
   urge", "we condemn", "nous demandons", "exigimos", "призываем"…); report — a
   report, study, survey, research, analysis, assessment, briefing or policy
   paper, guide or toolkit, or its findings ("findings", "data show"…); "to
   publish" alone names no kind, since statements are published too;
4. else news.

Each of the four languages (en, fr, es, ru) has its own phrases, listed
below; accents are optional ("decede" matches "décédé") because feeds lose
them, except in "déclaration", whose bare form is the English word. Words
match whole and in any case ("statements" and "Reports" count; "reported" and
"reporting" do not); Russian words match by stem. The English "declaration" is
left out on purpose: news about a UN declaration is not our statement.

tests/data/kinds.tsv is a corpus of first sentences in the four languages,
written after these rules; a share of it was kept out while the rules were
tuned, and tests/test_items_kinds.py reports the accuracy on each share.
"""

from __future__ import annotations

import re
import unicodedata

from newsletter.models.items import ITEM_KINDS

DEFAULT_KIND = "news"


def _words(*phrases: str) -> re.Pattern[str]:
    """One pattern of whole phrases; a space in a phrase matches any run of spaces."""
    body = "|".join(p.replace(" ", r"\s+") for p in phrases)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


# Phrases that announce a death or honour a person by themselves.
_TRIBUTE = _words(
    # en
    r"tributes?", r"pays? tribute", r"in memory of", r"in loving memory", r"in memoriam",
    r"obituary", r"passing of", r"passed away", r"passed on", r"(?:has|have) left us",
    r"left us (?:too soon|on|last|this|suddenly|peacefully)",
    r"lost (?:a|our|my) (?:dear |dearest |beloved |great |wonderful )?(?:friend|colleague|"
    r"comrade|sister|brother|founder|member|leader|champion)s?",
    r"(?:our|deepest|heartfelt|sincere) condolences", r"condolences", r"farewell to",
    r"say(?:ing)? goodbye to", r"rest in (?:peace|power)", r"rip", r"mourns?", r"mourning",
    r"remembering", r"we remember", r"honou?ring the (?:life|memory|legacy)",
    r"celebrat(?:e|es|ing) the life", r"will be (?:deeply |sorely )?missed",
    r"life and legacy",
    # fr
    r"hommages?", r"rend(?:ons|re|ent)? hommage", r"en m[ée]moire d[e']", r"in memoriam",
    r"nous a quitt[ée]e?s?", r"nous ont quitt[ée]e?s?", r"s'est [ée]teinte?",
    r"(?:nos|sinc[èe]res) condol[ée]ances", r"condol[ée]ances", r"adieu [àa]",
    r"disparition d[e']", r"nous pleurons", r"(?:le|la|notre) regrett[ée]e?",
    r"saluons la m[ée]moire",
    # es
    r"homenajes?", r"en memoria de", r"nos deja", r"nos dej[óo]", r"nos ha dejado",
    r"fallec(?:i[óo]|ido|ida|imiento)", r"ha fallecido", r"(?:nuestras )?condolencias",
    r"p[ée]same", r"descanse en paz", r"q\.? ?e\.? ?p\.? ?d\.?", r"adi[óo]s a",
    r"despedimos a", r"nos despedimos", r"lamentamos (?:profundamente )?(?:la|el) "
    r"(?:partida|fallecimiento|p[ée]rdida)", r"recordamos a",
    # ru (stems)
    r"памяти", r"в память", r"светл\w* памят\w*", r"вечная память", r"скончал\w*",
    r"ушёл из жизни", r"ушел из жизни", r"ушла из жизни", r"ушли из жизни", r"не стало",
    r"кончин\w*",
    r"соболезновани\w*", r"прощаемся", r"простились", r"скорбим", r"скорб\w*",
    r"чтим память", r"светлой памяти",
)  # fmt: skip

# Plain words for dying: a tribute only together with `_CLOSE`.
_DYING = _words(
    r"died", r"dies", r"passed", r"death of", r"lost", r"loss of", r"left us",
    r"d[ée]c[ée]d[ée]e?", r"d[ée]c[èe]s", r"est morte?", r"perte",
    r"muri[óo]", r"muerte de", r"p[ée]rdida", r"partida",
    r"умер\w*", r"смерт\w*", r"утрат\w*", r"потерял\w*", r"ушёл", r"ушел", r"ушла",
)  # fmt: skip

# Grief and closeness: what makes a death ours to mourn rather than a news item.
_CLOSE = _words(
    r"sad", r"sadness", r"sorrow", r"grief", r"heartbroken", r"devastated", r"beloved",
    r"dear", r"friend", r"friends", r"colleague", r"comrade", r"founder", r"co-founder",
    r"sister", r"brother", r"mentor", r"our member", r"activist", r"pioneer", r"champion",
    r"tristesse", r"douleur", r"ami", r"amie", r"coll[èe]gue", r"camarade", r"fondat(?:eur|rice)",
    r"militante?", r"cher", r"ch[èe]re",
    r"tristeza", r"dolor", r"amig[oa]", r"compa[ñn]er[oa]", r"querid[oa]", r"fundador[a]?",
    r"activista",
    r"друг\w*", r"подруг\w*", r"коллег\w*", r"соратни\w*", r"основател\w*", r"печал\w*",
    r"горе", r"с болью", r"активист\w*",
)  # fmt: skip

_STATEMENT = _words(
        # en
        r"statements?", r"open letters?", r"joint letters?", r"sign-on letters?",
        r"letter to", r"communiqu[ée]s?", r"joint submissions?", r"submissions? to",
        r"position (?:paper|statement)s?", r"appeal to", r"petitions?", r"press releases?",
        r"we (?:call|calls) on", r"we (?:urge|demand|condemn|denounce|reject|oppose|insist)",
        r"calls? on (?:governments?|states|member states|the)", r"urges?", r"condemns?",
        r"speaks? out", r"responds? to",
        # fr
        r"déclarations?", r"lettres? ouvertes?", r"lettre commune", r"communiqu[ée]s?",
        r"prise de position", r"position commune", r"appel(?:ons)? [àa]",
        r"nous (?:demandons|exhortons|condamnons|appelons|d[ée]non[çc]ons|exigeons)",
        r"plaidoyer",
        # es
        r"declaraci(?:[óo]n|ones)", r"cartas? abiertas?", r"carta conjunta", r"comunicados?",
        r"pronunciamientos?", r"posicionamientos?",
        r"(?:exigimos|instamos|condenamos|rechazamos|denunciamos|hacemos un llamado)",
        r"llamamiento",
        # ru
        r"заявлени\w*", r"открыто\w* письм\w*", r"обращени\w*", r"коммюнике",
        r"призываем", r"призывает", r"требуем", r"осуждаем", r"позици\w*",
        r"пресс-релиз\w*",
)  # fmt: skip

_REPORT = _words(
        # en
        # "media report", "news reports": someone reporting, not our report.
        r"(?<!media.)(?<!news.)(?<!press.)reports?", r"shadow reports?", r"briefing papers?",
        r"briefings?",
        r"technical briefs?", r"policy briefs?", r"policy papers?", r"white papers?",
        r"stud(?:y|ies)", r"surveys?", r"research", r"findings", r"analysis", r"analyses",
        r"assessments?", r"evaluations?", r"guides?", r"guidance", r"toolkits?",
        r"handbooks?", r"manuals?", r"mapping", r"publications?", r"new data",
        r"data (?:show|reveal)s?",
        # fr
        r"(?<!par.)rapports?", r"[ée]tudes?", r"enqu[êe]tes?", r"analyses?", r"recherches?",
        r"note d'information", r"guides?", r"publications?", r"[ée]valuations?",
        # es
        r"informes?", r"estudios?", r"encuestas?", r"investigaci(?:[óo]n|ones)",
        r"an[áa]lisis", r"gu[íi]as?", r"publicaci(?:[óo]n|ones)",
        r"evaluaci(?:[óo]n|ones)", r"diagn[óo]stico",
        # ru
        r"доклад\w*", r"отч[её]т\w*", r"исследовани\w*", r"опрос\w*", r"анализ\w*",
        r"обзор\w*", r"руководств\w*", r"публикаци\w*",
        r"оценк\w*", r"аналитическ\w*", r"брошюр\w*",
)  # fmt: skip

_KIND_WORDS: dict[str, re.Pattern[str]] = {"statement": _STATEMENT, "report": _REPORT}


def _fold(text: str) -> str:
    """The text as written, and again without accents, for feeds that lost them."""
    plain = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    # ё/й lose their marks too; the Russian stems above accept е for ё.
    return text if plain == text else f"{text} \u2029 {unicodedata.normalize('NFC', plain)}"


def is_tribute(text: str) -> bool:
    """Whether words announce a death or honour a person (rule 1)."""
    text = _fold(text)
    return bool(_TRIBUTE.search(text) or (_DYING.search(text) and _CLOSE.search(text)))


def _first_named_kind(text: str) -> str | None:
    text = _fold(text)
    found = [(m.start(), kind) for kind, rx in _KIND_WORDS.items() if (m := rx.search(text))]
    return min(found)[1] if found else None


def infer_kind(title: str, summary: str, link_text: str = "") -> str:
    """The kind of an item by the rule in this module's docstring."""
    if is_tribute(" \u2029 ".join((title, summary, link_text))):
        return "tribute"
    for text in (link_text, title, summary):
        kind = _first_named_kind(text)
        if kind is not None:
            return kind
    return DEFAULT_KIND


def normalise_kind(value: str) -> str | None:
    """A kind as a source may spell it ("Reports", " Statement ") or None if it is none."""
    word = value.strip().lower()
    if word in ITEM_KINDS:
        return word
    if word.endswith("s") and word[:-1] in ITEM_KINDS:
        return word[:-1]
    return None
