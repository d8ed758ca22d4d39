"""The keyboard focus ring stands out (at least 3:1, WCAG 1.4.11) wherever it is drawn: on the
white page, on the blue header, and around the skip link that opens above the header."""

import re
from pathlib import Path

import services.facility.pages as pages

CSS = (Path(pages.__file__).parent / "static" / "medcell.css").read_text(encoding="utf-8")


def rules() -> list[tuple[list[str], dict[str, str]]]:
    """The stylesheet's rules in order: (selectors, declarations)."""
    text = re.sub(r"/\*.*?\*/", "", CSS, flags=re.S)
    found = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        decls = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                decls[name.strip()] = value.strip()
        found.append(([s.strip() for s in selectors.split(",")], decls))
    return found


def declared(selector: str, prop: str) -> str | None:
    """The last value of prop given by a rule naming exactly this selector."""
    value = None
    for selectors, decls in rules():
        if selector in selectors:
            if prop in decls:
                value = decls[prop]
            elif prop == "outline-color" and "outline" in decls:
                value = _colour_in(decls["outline"])
            elif prop == "background-color" and "background" in decls:
                value = _colour_in(decls["background"])
    return value


def _colour_in(shorthand: str) -> str | None:
    match = re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b", shorthand)
    return match.group(0) if match else None


def ring_colour(*selectors: str) -> str:
    """The outline colour the first selector (most specific) that sets one gives."""
    for selector in selectors:
        colour = declared(selector, "outline-color")
        if colour:
            return colour
    raise AssertionError(f"no focus ring colour for {selectors}")


def luminance(colour: str) -> float:
    hexa = colour.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    channels = []
    for i in (0, 2, 4):
        c = int(hexa[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_focus_ring_on_the_white_page_has_3_to_1():
    page = declared("body", "background")
    ring = ring_colour(":focus-visible")
    assert contrast(ring, page) >= 3, (ring, page, contrast(ring, page))


def test_focus_ring_on_the_blue_header_has_3_to_1():
    header = declared(".top", "background")
    ring = ring_colour(".top :focus-visible", ":focus-visible")
    assert contrast(ring, header) >= 3, (ring, header, round(contrast(ring, header), 2))


def test_focus_ring_of_the_skip_link_sits_on_its_own_white_box():
    # The skip link opens at the very top, over the header: its ring is drawn inside its own
    # white box (negative offset, within the padding), where the page's ring colour holds 3:1.
    offset = declared(".skip:focus-visible", "outline-offset")
    assert offset is not None and offset.startswith("-"), offset
    box = declared(".skip", "background")
    ring = ring_colour(".skip:focus-visible", ":focus-visible")
    assert contrast(ring, box) >= 3, (ring, box)
