"""Guess the language of a text, offline and without a model: by script, then by common words.

Good enough to tell the user "detected: French" and to name the source
language in a translation prompt; returns None when unsure.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Code -> English name, for the languages people most often translate between.
LANGUAGES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "pl": "Polish",
    "cs": "Czech", "ro": "Romanian", "hu": "Hungarian", "tr": "Turkish", "el": "Greek", "ru": "Russian",
    "uk": "Ukrainian", "ar": "Arabic", "he": "Hebrew", "fa": "Persian", "hi": "Hindi", "bn": "Bengali",
    "th": "Thai", "vi": "Vietnamese", "id": "Indonesian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean",
}
# Scripts that (nearly) name one language.
SCRIPTS = {"HANGUL": "ko", "HIRAGANA": "ja", "KATAKANA": "ja", "CJK": "zh", "GREEK": "el", "HEBREW": "he",
           "ARABIC": "ar", "DEVANAGARI": "hi", "BENGALI": "bn", "THAI": "th", "CYRILLIC": "ru"}
# Very common short words; a text's language is the one whose words it uses most.
STOPWORDS = {
    "en": "the and of to in is that it for was with as on are be this have not you",
    "fr": "le la les et des un une est que pas pour dans qui sur avec au du ce il elle je",
    "de": "der die das und ist nicht ein eine zu den mit sich auf für ich von dem des auch",
    "es": "el la los las y de que en un una es por con para no se lo del al como",
    "it": "il lo la gli le di che è e un una per non con sono del della nel anche",
    "pt": "o a os as e de que em um uma não para com do da no na se por é",
    "nl": "de het een en van is dat niet op te zijn met voor ik je er maar ook",
    "sv": "och att det som en är på för med inte den har jag av till om",
    "pl": "i w nie na się z że do to jest jak co ale o po tak",
    "tr": "ve bir bu da de için ile ne çok gibi daha olan ama",
    "id": "dan yang di ini itu dengan untuk tidak ada dari akan pada",
    "vi": "và của là có không một những được cho trong người này",
}
_STOP_SETS = {code: set(words.split()) for code, words in STOPWORDS.items()}


def language_name(code_or_name: str) -> str:
    """'fr', 'FR', 'french' or 'French' -> 'French'; anything else is returned as typed."""
    value = code_or_name.strip()
    if value.lower() in LANGUAGES:
        return LANGUAGES[value.lower()]
    for name in LANGUAGES.values():
        if name.lower() == value.lower():
            return name
    return value


def detect_language(text: str) -> str | None:
    """The language code of ``text`` ('en', 'fr', 'zh'...), or None when unsure."""
    letters = [c for c in text[:5000] if c.isalpha()]
    if len(letters) < 3:
        return None
    scripts = Counter(_script(c) for c in letters)
    script, count = scripts.most_common(1)[0]
    if script != "LATIN" and count >= 0.3 * len(letters):
        if script in ("HIRAGANA", "KATAKANA") or (script == "CJK" and (scripts["HIRAGANA"] + scripts["KATAKANA"])):
            return "ja"
        if script == "CYRILLIC" and re.search(r"[іїєґ]", text.lower()):
            return "uk"
        return SCRIPTS.get(script)
    words = re.findall(r"[^\W\d_]+", text[:5000].lower())
    scores = {code: sum(1 for w in words if w in stops) for code, stops in _STOP_SETS.items()}
    best = max(scores, key=scores.get)
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or (len(words) > 6 and ranked[0] == ranked[1]):
        return None
    return best


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    for script in ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "GREEK", "HEBREW", "ARABIC", "DEVANAGARI",
                   "BENGALI", "THAI", "CYRILLIC"):
        if name.startswith(script) or f" {script} " in f" {name} ":
            return script
    return "LATIN"
