"""Storage sizes: binary units only, whole numbers, quotas within bounds."""

import pytest

from medcell_common.sizes import format_size, parse_quota, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("1KiB", 1024), ("500MiB", 500 * 1024**2), ("2GiB", 2 * 1024**3), ("1TiB", 1024**4)],
)
def test_sizes_in_binary_units_are_read_exactly(text, size):
    assert parse_size(text) == size
    assert format_size(size) == text


@pytest.mark.parametrize(
    "text", ["", "2", "2G", "2GB", "2 GiB", "02GiB", "0MiB", "1.5GiB", "-1GiB", "2gib", "2GiB\n"]
)
def test_anything_else_is_refused_with_the_rule(text):
    with pytest.raises(ValueError, match="KiB, MiB, GiB or TiB"):
        parse_size(text)


def test_quotas_are_between_one_mebibyte_and_64_tebibytes():
    assert parse_quota("1MiB") == 1024**2
    assert parse_quota("64TiB") == 64 * 1024**4
    for text in ("1023KiB", "65TiB"):
        with pytest.raises(ValueError, match="between 1MiB and 64TiB"):
            parse_quota(text)


def test_sizes_that_are_not_whole_units_print_as_bytes_or_the_largest_exact_unit():
    assert format_size(1536 * 1024) == "1536KiB"
    assert format_size(1000) == "1000B"
