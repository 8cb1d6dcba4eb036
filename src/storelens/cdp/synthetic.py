"""Synthetic customer records with known duplicates, for identity-resolution tests.

Real customer data cannot be shared and FEBRL is Australian and small, so this
builds a German-retail-like population (German, Turkish and English names,
German addresses and phone numbers) where some people appear more than once, as
they do when the CRM, the web shop and the loyalty till each register them. The
duplicates carry the faults those sources really produce: typos, nicknames,
moves, blanks, second e-mail addresses, other phone spellings, other case and
accent spellings. Raw values go through :mod:`storelens.cdp.normalise`, so the
frame is what :class:`~storelens.cdp.identity.IdentityModel` expects and the
normalisers are exercised on the way. Stdlib ``random`` only: deterministic for a
seed and no downloads.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from storelens.cdp.normalise import (
    normalise_dob,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    normalise_text,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NICKNAMES", "SOURCES", "SYNTHETIC_COLUMNS", "generate_customers"]

SOURCES = ("crm", "webshop", "pos_loyalty")
SYNTHETIC_COLUMNS = (
    "first_name",
    "last_name",
    "dob",
    "street_number",
    "address",
    "postcode",
    "city",
    "email",
    "phone",
    "loyalty_id",
)


def _words(text: str) -> list[str]:
    """Space-separated words; ``_`` stands for a space inside one."""
    return [w.replace("_", " ") for w in text.split()]


NICKNAMES = {
    "Johannes": "Hannes", "Katharina": "Kathi", "William": "Bill", "Elizabeth": "Liz",
    "Alexander": "Alex", "Christian": "Chris", "Michael": "Micha", "Thomas": "Tom",
    "Stefanie": "Steffi", "Gabriele": "Gabi", "Susanne": "Susi", "Wolfgang": "Wolf",
    "Robert": "Bob", "Margaret": "Maggie", "Daniel": "Dani", "Franziska": "Franzi",
    "Benjamin": "Ben", "Maximilian": "Max", "Jennifer": "Jenny", "Christina": "Tina",
    "Andreas": "Andi", "Mustafa": "Musti", "Richard": "Rick", "Nikolaus": "Niko",
    "Friedrich": "Fritz", "Magdalena": "Leni", "Tobias": "Tobi", "Patricia": "Patty",
    "Sebastian": "Basti", "Dorothea": "Doro", "Jonathan": "Jonny", "Matthias": "Matze",
}  # fmt: skip
_FIRST = list(NICKNAMES) + _words(
    "Jürgen Jörg Günther Sören Björn Anna Lena Lea Marie Sophie Hannah Laura Julia Sarah "
    "Lisa Paula Emma Mia Clara Greta Frieda Ida Lina Jonas Lukas Leon Finn Paul Felix Elias "
    "Noah Luis Moritz Jan Tim Niklas Florian Philipp Markus Stefan Ralf Uwe Dirk Heike Petra "
    "Monika Ursula Renate Birgit Sabine Claudia Andrea Nicole Kerstin Silke Anja Tanja Jana "
    "Mehmet Ahmet Ali Hüseyin Hasan İbrahim Emre Murat Yusuf Ömer Can Burak Cem Kemal Özlem "
    "Ayşe Fatma Emine Hatice Zeynep Elif Gül Çağla Büşra Şükrü Derya Merve Selin Aylin "
    "James John George Oliver Harry Jack Charlie Emily Olivia Amelia Grace Chloe Jessica "
    "Zoë Chloé René André Noël Jérôme Renée Hélène Amélie Léa"
)
_LAST = _words(
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
    "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann "
    "Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann "
    "König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert "
    "Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann Franke "
    "Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein "
    "Jäger Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich "
    "Ziegler Kuhn Kühn Pohl Engel Horn Busch Bergmann Thomas Voigt Sauer Arnold Wolff Pfeiffer "
    "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç "
    "Aslan Çetin Kara Koç Kurt Özkan Şimşek Polat Korkmaz Karaca Erdoğan Güneş Aksoy Bulut "
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Johnson Roberts Robinson Wright "
    "Thompson Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood "
    "O'Brien O'Connor McDonald Murphy Kelly Ryan Byrne Dubois Lefèvre Müller-Lüdenscheidt "
    "Schmidt-Weber Meyer-Landrut Groß-Gerau Lübke Nüßlein Strauß Weißmüller Rößler Fußmann"
)
_STREETS = _words(
    "Hauptstraße Bahnhofstraße Gartenstraße Schulstraße Dorfstraße Bergstraße Lindenstraße "
    "Kirchstraße Waldstraße Ringstraße Mühlenweg Wiesenweg Birkenweg Am_Markt Goethestraße "
    "Schillerstraße Friedhofstraße Rosenstraße Blumenstraße Poststraße Feldstraße "
    "Amselweg Eichendorffstraße Beethovenstraße Mozartstraße Kastanienallee Parkstraße "
    "Industriestraße Sonnenstraße Lessingstraße Talstraße Uhlandstraße Bismarckstraße"
)
_CITIES = (
    ("Berlin", 10115, 14199), ("Hamburg", 20095, 22769), ("München", 80331, 81929),
    ("Köln", 50667, 51149), ("Frankfurt am Main", 60306, 60599), ("Stuttgart", 70173, 70629),
    ("Düsseldorf", 40210, 40629), ("Leipzig", 4103, 4357), ("Dortmund", 44135, 44388),
    ("Essen", 45127, 45359), ("Bremen", 28195, 28779), ("Dresden", 1067, 1328),
    ("Hannover", 30159, 30669), ("Nürnberg", 90402, 90491), ("Duisburg", 47051, 47279),
    ("Bochum", 44787, 44894), ("Wuppertal", 42103, 42399), ("Bielefeld", 33602, 33739),
)  # fmt: skip
_DOMAINS = ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.com", "yahoo.de", "posteo.de")
_MOBILE = ("0151", "0152", "0157", "0160", "0170", "0171", "0172", "0173", "0176", "0177")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class _Gen:
    """One generator run: the rng plus the registries that keep identifiers unique.

    E-mail, phone and loyalty id are deterministic match keys in the model, so two
    different people must never share one, or the truth itself would be wrong.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311  # sample data, not secrets
        self.emails: set[str] = set()
        self.phones: set[str] = set()
        self.loyalty = 0

    def address(self) -> dict[str, str]:
        city, lo, hi = self.rng.choice(_CITIES)
        number = str(self.rng.randint(1, 140))
        if self.rng.random() < 0.08:
            number += self.rng.choice("abc")
        return {
            "address": self.rng.choice(_STREETS),
            "street_number": number,
            "postcode": f"{self.rng.randint(lo, hi):05d}",
            "city": city,
        }

    def email(self, first: str, last: str) -> str:
        f, la = (normalise_text(x.translate(_FOLD)) or "x" for x in (first, last))
        f, la = f.replace(" ", ""), la.replace(" ", "")
        style = self.rng.choice((f"{f}.{la}", f"{f[0]}{la}", f"{f}{la[:3]}", f"{la}.{f}"))
        local = style + (str(self.rng.randint(1, 99)) if self.rng.random() < 0.4 else "")
        while True:
            candidate = f"{local}@{self.rng.choice(_DOMAINS)}"
            if candidate not in self.emails:
                self.emails.add(candidate)
                return candidate
            local += str(self.rng.randint(0, 9))

    def phone(self) -> str:
        while True:
            number = self.rng.choice(_MOBILE) + "".join(self.rng.choices("0123456789", k=8))
            if number not in self.phones:
                self.phones.add(number)
                return number

    def person(self, household: dict[str, Any] | None) -> dict[str, Any]:
        rng = self.rng
        first = rng.choice(_FIRST)
        last = household["last_name"] if household else rng.choice(_LAST)
        born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 66))
        p: dict[str, Any] = {"first_name": first, "last_name": last, "dob": born}
        p.update({k: household[k] for k in ("address", "street_number", "postcode", "city")}
                 if household else self.address())  # fmt: skip
        p["email"] = self.email(first, last) if rng.random() < 0.9 else None
        p["phone"] = self.phone() if rng.random() < 0.75 else None
        self.loyalty += rng.randint(1, 9)
        p["loyalty_no"] = f"L{self.loyalty:09d}"  # the till's key, shown only where held
        p["loyalty_id"] = p["loyalty_no"] if rng.random() < 0.35 else None
        return p

    def typo(self, word: str) -> str:
        """One keyboard slip: swap, drop or replace a letter (never the first)."""
        if len(word) < 3:
            return word + self.rng.choice(_LETTERS)
        i = self.rng.randint(1, len(word) - 2)
        kind = self.rng.randint(0, 2)
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        return word[:i] + self.rng.choice(_LETTERS) + word[i + 1 :]

    def duplicate(self, p: dict[str, Any]) -> dict[str, Any]:
        """A second registration of ``p`` with one to three realistic faults."""
        rng, d = self.rng, dict(p)
        faults = ("typo", "nickname", "moved", "blank", "email", "dob", "spelling")
        for fault in rng.sample(faults, rng.choice((1, 1, 2, 2, 3))):
            if fault == "typo":
                key = rng.choice(("first_name", "last_name", "address"))
                d[key] = self.typo(d[key])
            elif fault == "nickname" and d["first_name"] in NICKNAMES:
                d["first_name"] = NICKNAMES[d["first_name"]]
            elif fault == "moved":
                d.update(self.address())
            elif fault == "blank":
                for key in rng.sample(("email", "phone", "dob", "loyalty_id"), rng.randint(1, 2)):
                    d[key] = None
            elif fault == "email":
                d["email"] = self.email(d["first_name"], d["last_name"])
            elif fault == "dob" and d["dob"] is not None:
                day, month = d["dob"].day, d["dob"].month
                if day <= 12 and day != month:  # day/month swapped on entry
                    d["dob"] = d["dob"].replace(day=month, month=day)
                else:
                    year = d["dob"].year + rng.choice((-1, 1))
                    d["dob"] = d["dob"].replace(year=year, day=min(day, 28))
            elif fault == "spelling":
                key = rng.choice(("first_name", "last_name", "city", "address"))
                d[key] = rng.choice((d[key].upper(), d[key].translate(_FOLD), d[key].lower()))
        return d

    def raw_phone(self, number: str) -> str:
        """The same mobile number as people type it into different forms."""
        pre, rest = number[:4], number[4:]
        return self.rng.choice(
            (
                number,
                f"{pre} {rest}",
                f"{pre}/{rest}",
                f"{pre}-{rest[:3]} {rest[3:]}",
                f"+49 {pre[1:]} {rest}",
                f"+49 (0){pre[1:]} {rest}",
                f"0049{pre[1:]}{rest}",
            )
        )

    def row(self, p: dict[str, Any], uid: str, source: str) -> dict[str, Any]:
        """Normalise one raw record into the model's column form."""
        dob = p["dob"]
        raw_dob = None if dob is None else self.rng.choice((dob.isoformat(), f"{dob:%d.%m.%Y}"))
        return {
            "unique_id": uid,
            "source_dataset": source,
            "first_name": normalise_name(p["first_name"]),
            "last_name": normalise_name(p["last_name"]),
            "dob": normalise_dob(raw_dob),
            "street_number": normalise_text(p["street_number"]),
            "address": normalise_text(p["address"]),
            "postcode": normalise_postcode(p["postcode"]),
            "city": normalise_text(p["city"]),
            "email": normalise_email(p["email"]),
            "phone": normalise_phone(self.raw_phone(p["phone"])) if p["phone"] else None,
            "loyalty_id": p["loyalty_no"] if source == "pos_loyalty" else p["loyalty_id"],
        }


def generate_customers(
    n_records: int, seed: int = 7, *, dup_share: float = 0.22
) -> tuple[pd.DataFrame, pd.Series]:
    """``n_records`` normalised customer records and the true person of each.

    About ``dup_share`` of people get one to three extra records (mean 1.5) from
    another source; 6 % of people share a household (surname and address) with the
    previous person, the classic false-merge trap. Returns the model frame
    (``unique_id``, ``source_dataset``, :data:`SYNTHETIC_COLUMNS`) and a Series of
    entity ids aligned with it. Row order is shuffled so duplicates are not adjacent.
    """
    import pandas as pd

    gen = _Gen(seed)
    rng = gen.rng
    rows: list[dict[str, Any]] = []
    entities: list[str] = []
    person_no = 0
    prev: dict[str, Any] | None = None
    while len(rows) < n_records:
        household = prev if prev is not None and rng.random() < 0.06 else None
        p = gen.person(household)
        entity = f"p{person_no:08d}"
        source = rng.choice(SOURCES)
        copies = [(p, source)]
        if rng.random() < dup_share:
            for _ in range(rng.choice((1, 1, 1, 1, 1, 1, 2, 2, 2, 3))):
                copies.append((gen.duplicate(p), rng.choice(SOURCES)))
        for record, src in copies[: n_records - len(rows)]:
            rows.append(gen.row(record, f"r{len(rows):08d}", src))
            entities.append(entity)
        prev, person_no = p, person_no + 1
    order = list(range(len(rows)))
    rng.shuffle(order)
    frame = pd.DataFrame([rows[i] for i in order])
    truth = pd.Series([entities[i] for i in order], name="entity_id")
    return frame, truth
