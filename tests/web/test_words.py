"""One word for each thing in what patients and staff read: "Unterhaltung", never "Gespräch";
"Praxis", never "Einrichtung"."""

import re

from services.facility.core import pdf
from services.facility.pages import i18n

OTHER_WORDS = re.compile(r"Gespräch|Einrichtung", re.IGNORECASE)


def test_the_german_texts_use_one_word_for_each_thing():
    texts = {**i18n.DE, **{f"pdf.{k}": v for k, v in pdf.LABELS["de"].items()}}
    assert {key: text for key, text in texts.items() if OTHER_WORDS.search(text)} == {}
