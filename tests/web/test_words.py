"""One word for each thing in what patients and staff read: "Unterhaltung", never "Gespräch";
"Praxis", never "Einrichtung"; in English "practice", never "facility"."""

import re

from services.facility.core import pdf
from services.facility.pages import i18n

OTHER_WORDS = re.compile(r"Gespräch|Einrichtung", re.IGNORECASE)
# A placeholder's name ({facility}) is not a word anyone reads.
OTHER_WORDS_EN = re.compile(r"(?<!\{)\bfacilit(y|ies)\b(?!\})", re.IGNORECASE)


def test_the_german_texts_use_one_word_for_each_thing():
    texts = {**i18n.DE, **{f"pdf.{k}": v for k, v in pdf.LABELS["de"].items()}}
    assert {key: text for key, text in texts.items() if OTHER_WORDS.search(text)} == {}


def test_the_english_texts_say_practice():
    texts = {**i18n.EN, **{f"pdf.{k}": v for k, v in pdf.LABELS["en"].items()}}
    assert {key: text for key, text in texts.items() if OTHER_WORDS_EN.search(text)} == {}
