"""Normalisation of the spellings retail sources really hold: phone formats read in the
region a record implies, mojibake and transliteration, placeholders nulled."""

from __future__ import annotations

import pytest

from storelens.cdp.normalise import (
    normalise_dob,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_record,
    phone_regions,
    region_of_postcode,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 (0)29 2018 0123", "+442920180123"),
        ("0044 29 2018 0123", "+442920180123"),
        ("029 2018 0123", "+442920180123"),
        ("29 2018 0123", "+442920180123"),  # national without the trunk 0
        ("07911 123456", "+447911123456"),
    ],
)
def test_gb_phone_spellings_parse(raw: str, expected: str) -> None:
    assert normalise_phone(raw, "GB") == expected


def test_regions_are_tried_in_order_until_one_is_valid() -> None:
    assert normalise_phone("(646) 201-5743", "GB") is None
    assert normalise_phone("(646) 201-5743", ["GB", "US"]) == "+16462015743"
    assert normalise_phone("1-312-555-0147", ["US", "GB"]) == "+13125550147"


@pytest.mark.parametrize("placeholder", ["0000000000", "9999999", "00000"])
def test_placeholder_phones_are_null(placeholder: str) -> None:
    assert normalise_phone(placeholder, "GB") is None


@pytest.mark.parametrize(
    ("postcode", "city", "default", "expected"),
    [
        ("SW1A 1AA", None, "US", "GB"),
        ("cf10 1aa", None, None, "GB"),
        ("60601-1234", None, "GB", "US"),
        ("10001", "New York", "GB", "US"),
        ("10115", "Berlin", "GB", "DE"),
        ("10115", None, "DE", "DE"),
        ("1234", None, "GB", None),
        (None, None, "GB", None),
    ],
)
def test_region_of_postcode(
    postcode: str | None, city: str | None, default: str | None, expected: str | None
) -> None:
    assert region_of_postcode(postcode, city, default) == expected


def test_phone_regions_prefer_the_records_country_then_postcode_then_default() -> None:
    assert phone_regions({"country": "de", "postcode": "SW1A 1AA"}, "US") == ["DE", "GB", "US"]
    assert phone_regions({"postcode": "10001"}, "GB") == ["US", "DE", "GB"]
    assert phone_regions({"postcode": "SW1A 1AA"}, "GB") == ["GB"]
    assert phone_regions({}, "GB") == ["GB"]
    assert phone_regions({"phone": "1-312-555-0147"}, "GB") == ["GB", "US"]
    assert phone_regions({"phone": "020 7946 0958"}, "GB") == ["GB"]
    record = normalise_record({"phone": "(646) 201-5743", "postcode": "10001"}, "GB")
    assert record["phone"] == "+16462015743"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MÃ¼ller", "muller"),  # UTF-8 read as Latin-1 upstream
        ("Müller", "muller"),
        ("Yılmaz", "yilmaz"),  # dotless i has no combining form
        ("Łukasz", "lukasz"),
        ("Strauß", "strauss"),
    ],
)
def test_names_repair_mojibake_and_transliterate(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_placeholders_are_null() -> None:
    assert normalise_email("noemail@shop.co.uk") is None
    assert normalise_email("none@example.com") is None
    assert normalise_email("nora@example.com") == "nora@example.com"
    assert normalise_dob("1900-01-01") is None
    assert normalise_dob("1901-01-02") == "1901-01-02"
