"""Vocabulary for the retail generator: names, towns, postcodes and phone numbers per country.

Kept apart from the generator's logic so the logic reads as the story of a customer
base (people, households, registrations, mistakes) and this file as its props. Phone
numbers are drawn until :mod:`phonenumbers` calls them valid, so that every phone the
truth holds *can* be parsed, and a missed link is the matcher's fault, not the data's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "COUNTRIES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "NICKNAMES",
    "STREETS",
    "TOWNS",
    "Town",
    "format_phone",
    "make_landline",
    "make_mobile",
    "make_postcode",
    "typo",
]

COUNTRIES = (("GB", 0.45), ("US", 0.40), ("DE", 0.15))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "GB": {
        "m": _words(
            "James William Thomas Oliver Harry George Jack Charlie Daniel Matthew Edward "
            "Richard Robert Michael Christopher Joseph Anthony Alexander Samuel Benjamin "
            "David Andrew Peter Stephen Owen Rhys Dylan Gareth"
        ),
        "f": _words(
            "Elizabeth Margaret Katherine Rebecca Susan Jennifer Emily Olivia Amelia Grace "
            "Charlotte Sophie Jessica Hannah Lucy Chloe Emma Sarah Laura Rachel Victoria "
            "Patricia Catherine Eleanor Megan Sian Bethan Ffion"
        ),
    },
    "US": {
        "m": _words(
            "James Robert John Michael William David Richard Joseph Thomas Christopher "
            "Daniel Matthew Anthony Andrew Joshua Kevin Brian Jason Ryan Tyler Brandon "
            "Carlos Luis Jose Juan Miguel Jamal Darnell"
        ),
        "f": _words(
            "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen "
            "Nancy Margaret Ashley Kimberly Emily Michelle Amanda Melissa Rebecca "
            "Stephanie Maria Ana Sofia Isabella Latoya Keisha Madison Brittany"
        ),
    },
    "DE": {
        "m": _words(
            "Johannes Friedrich Andreas Jürgen Jörg Günther Sören Björn Lukas Jonas Felix "
            "Maximilian Tobias Matthias Sebastian Stefan Florian Niklas Moritz Mehmet Ömer"
        ),
        "f": _words(
            "Stefanie Katharina Christina Anna Lena Jülia Sophie Hannah Laura Julia Sarah "
            "Lisa Paula Clara Greta Frieda Birgit Sabine Özlem Ayşe Zeynep Büşra"
        ),
    },
}
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "GB": _words(
        "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts "
        "Robinson Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke "
        "Patel Jackson Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker "
        "Harrison Morgan Allen James Scott Phillips Watson Davis Parker Price Bennett Young "
        "Griffiths Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy "
        "O'Brien O'Connor McDonald Khan Ali Hussain Begum Singh Kaur Ahmed"
    ),
    "US": _words(
        "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
        "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
        "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright "
        "Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell "
        "Mitchell Carter Roberts Kim Chen Washington O'Neill McCarthy Peña Muñoz"
    ),
    "DE": _words(
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer "
        "Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger "
        "Hofmann Hartmann Lange Köhler König Jäger Groß Weiß Böhm Möller Strauß Yılmaz Şahin "
        "Öztürk Doğan Çelik Kılıç"
    ),
}
NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"), "Katherine": ("Kate", "Katie"),
    "Margaret": ("Maggie", "Peggy"), "James": ("Jim", "Jimmy"), "Michael": ("Mike",),
    "Thomas": ("Tom", "Tommy"), "Jennifer": ("Jen", "Jenny"), "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"), "Richard": ("Rick", "Dick"), "Joseph": ("Joe",),
    "Alexander": ("Alex",), "Rebecca": ("Becky",), "Patricia": ("Pat", "Patty"),
    "Susan": ("Sue",), "Anthony": ("Tony",), "Matthew": ("Matt",), "Edward": ("Ed", "Ted"),
    "Samuel": ("Sam",), "Benjamin": ("Ben",), "Andrew": ("Andy", "Drew"),
    "Stephanie": ("Steph",), "Jessica": ("Jess",), "Victoria": ("Vicky",),
    "Johannes": ("Hans",), "Friedrich": ("Fritz",), "Stefanie": ("Steffi",),
    "Katharina": ("Kathi",), "Andreas": ("Andi",), "Christina": ("Tina",),
    "Maximilian": ("Max",), "Tobias": ("Tobi",), "Sebastian": ("Basti",),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Town:
    country: str
    name: str
    postal: str
    """GB: outward area letters; US: ZIP prefix (3 digits); DE: first two digits."""
    dial: tuple[str, ...]
    """Landline area codes, national form (``029``, ``646``, ``030``)."""


TOWNS: tuple[Town, ...] = (
    Town("GB", "London", "SW", ("020",)), Town("GB", "London", "E", ("020",)),
    Town("GB", "Cardiff", "CF", ("029",)), Town("GB", "Manchester", "M", ("0161",)),
    Town("GB", "Leeds", "LS", ("0113",)), Town("GB", "Bristol", "BS", ("0117",)),
    Town("GB", "Birmingham", "B", ("0121",)), Town("GB", "Glasgow", "G", ("0141",)),
    Town("US", "New York", "100", ("212", "646", "917")),
    Town("US", "Brooklyn", "112", ("718", "347")), Town("US", "Chicago", "606", ("312", "773")),
    Town("US", "Los Angeles", "900", ("213", "310", "323")),
    Town("US", "Houston", "770", ("713", "832")), Town("US", "Boston", "021", ("617",)),
    Town("US", "Seattle", "981", ("206",)),
    Town("DE", "Berlin", "10", ("030",)), Town("DE", "Hamburg", "20", ("040",)),
    Town("DE", "München", "80", ("089",)), Town("DE", "Köln", "50", ("0221",)),
)  # fmt: skip
STREETS: dict[str, tuple[str, ...]] = {
    "GB": _words("High_Street Station_Road Church_Lane Park_Road Victoria_Road Mill_Lane "
                 "Queens_Road Kings_Road Green_Lane Manor_Road Cathedral_Road New_Road"),
    "US": _words("Main_St Oak_Ave Maple_St Park_Ave Washington_Blvd Elm_St 2nd_Ave "
                 "Lake_Shore_Dr Cedar_Ln Pine_St Sunset_Blvd Broadway"),
    "DE": _words("Hauptstraße Bahnhofstraße Gartenstraße Schulstraße Lindenstraße "
                 "Kirchstraße Mühlenweg Goethestraße Schillerstraße Rosenstraße"),
}  # fmt: skip
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def make_postcode(rng: random.Random, town: Town) -> str:
    """A postcode of the town's shape: ``CF10 1AA``, ``10027``, ``10115``."""
    if town.country == "GB":
        return (
            f"{town.postal}{rng.randint(1, 28)} {rng.randint(0, 9)}"
            f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
        )
    if town.country == "US":
        return f"{town.postal}{rng.randint(1, 99):02d}"
    return f"{town.postal}{rng.randint(100, 999)}"


def _valid(number: str, region: str) -> bool:
    import phonenumbers

    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, region)))
    except phonenumbers.NumberParseException:
        return False


def _drawn(rng: random.Random, prefix: str, length: int, region: str) -> str:
    while True:
        number = prefix + "".join(rng.choices("0123456789", k=length - len(prefix)))
        if number[len(prefix) : len(prefix) + 1] not in ("0", "1") and _valid(number, region):
            return number


def make_mobile(rng: random.Random, town: Town) -> str:
    """A valid mobile number in national form (US numbers: 10 digits, no trunk)."""
    if town.country == "GB":
        return _drawn(rng, rng.choice(("074", "075", "077", "078", "079")), 11, "GB")
    if town.country == "US":
        return _drawn(rng, rng.choice(town.dial), 10, "US")
    return _drawn(rng, rng.choice(("0151", "0160", "0171", "0176")), 12, "DE")


def make_landline(rng: random.Random, town: Town) -> str:
    """A valid landline in the town's area code, national form."""
    code = rng.choice(town.dial)
    length = {"GB": 11, "US": 10, "DE": 11}[town.country]
    return _drawn(rng, code, length, town.country)


def format_phone(rng: random.Random, national: str, country: str) -> tuple[str, str]:
    """The number as someone types it, and the name of that spelling (a pattern tag)."""
    if country == "US":
        a, b, c = national[:3], national[3:6], national[6:]
        return rng.choice(
            (
                (f"({a}) {b}-{c}", "phone_us_paren"),
                (f"1-{a}-{b}-{c}", "phone_us_1dash"),
                (f"+1 {a} {b} {c}", "phone_intl"),
                (f"{a}.{b}.{c}", "phone_us_dots"),
            )
        )
    cc = "44" if country == "GB" else "49"
    rest = national[1:]
    return rng.choice(
        (
            (national, "phone_national"),
            (f"{national[:5]} {national[5:]}", "phone_national"),
            (f"+{cc} (0){rest[:3]} {rest[3:]}", "phone_intl_trunk"),
            (f"00{cc}{rest}", "phone_00"),
            (f"+{cc} {rest}", "phone_intl"),
            (rest, "phone_no_trunk"),
        )
    )


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip inside a word (never the first letter): swap, drop or replace."""
    if len(word) < 4:
        return word
    i = rng.randint(1, len(word) - 2)
    return rng.choice(
        (
            word[:i] + word[i + 1] + word[i] + word[i + 2 :],
            word[:i] + word[i + 1 :],
            word[:i] + rng.choice("aeinorst") + word[i + 1 :],
        )
    )
