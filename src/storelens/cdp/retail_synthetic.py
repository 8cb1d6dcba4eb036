"""A retailer's customer base with known truth: three source extracts and what went wrong.

FEBRL's clean one-to-one duplicates say little about a retailer's data, where a sparse
till record (name, phone, postcode) must meet a CRM record through name and postcode,
and the people most alike are *different* people: a couple at one address with one
landline, twins, a father and son of one name, two strangers called James Smith. So
this generator builds households first and registrations second, then makes the
mistakes real forms and tills make, and records both: each record's person and the
patterns it received, and each hard-negative pair of people with their relation.
Seeded and deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations
from typing import TYPE_CHECKING, Any

from storelens.cdp.normalise import normalise_record
from storelens.cdp.retail_people import (
    COUNTRIES,
    FIRST_NAMES,
    LAST_NAMES,
    NICKNAMES,
    STREETS,
    TOWNS,
    Town,
    format_phone,
    make_landline,
    make_mobile,
    make_postcode,
    typo,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RETAIL_COLUMNS",
    "RETAIL_SOURCES",
    "RetailData",
    "generate_retail",
    "retail_model_frame",
]

RETAIL_SOURCES: dict[str, tuple[str, ...]] = {
    "pos": ("source_record_id", "loyalty_id", "first_name", "last_name", "phone", "postcode"),
    "web": ("source_record_id", "email", "first_name", "last_name", "street", "city",
            "postcode", "dob", "phone"),
    "crm": ("source_record_id", "first_name", "last_name", "dob", "street", "city",
            "postcode", "email"),
}  # fmt: skip
RETAIL_COLUMNS = ("first_name", "last_name", "dob", "address", "postcode", "city", "email",
                  "phone", "loyalty_id")  # fmt: skip
_FOLD = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
_DOMAINS = {"GB": ("gmail.com", "hotmail.co.uk", "btinternet.com", "yahoo.co.uk", "outlook.com"),
            "US": ("gmail.com", "yahoo.com", "hotmail.com", "aol.com", "icloud.com"),
            "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de")}  # fmt: skip


@dataclass
class RetailData:
    """Raw source rows as exported, and the truth about them."""

    sources: dict[str, list[dict[str, Any]]]
    person_of: dict[str, str]
    """``source:record_id`` -> person id."""
    patterns_of: dict[str, list[str]]
    """``source:record_id`` -> the corruptions and spellings that record received."""
    hard_negatives: list[tuple[str, str, str]]
    """``(person_a, person_b, relation)``: different people who look alike."""
    people: int = 0

    def truth_json(self) -> dict[str, Any]:
        """The truth file ``storelens cdp eval --truth`` reads."""
        return {
            "records": {
                k: {"person": p, "patterns": self.patterns_of[k]} for k, p in self.person_of.items()
            },
            "hard_negatives": [list(t) for t in self.hard_negatives],
        }


@dataclass
class _Person:
    pid: str
    country: str
    sex: str
    first: str
    last: str
    dob: date
    town: Town
    street: str
    postcode: str
    household: str
    email: str | None = None
    mobile: str | None = None
    landline: str | None = None
    suffix: str = ""
    maiden: str | None = None
    old_home: tuple[Town, str, str] | None = None
    parent: _Person | None = None
    shared_email: bool = False


class _Base:
    """One run: households of people, then their registrations in each source."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311  # sample data, not secrets
        self.people: list[_Person] = []
        self.negatives: list[tuple[str, str, str]] = []
        self.emails: set[str] = set()
        self.loyalty = 100_000

    def _home(self, country: str) -> tuple[Town, str, str]:
        town = self.rng.choice([t for t in TOWNS if t.country == country])
        street = self.rng.choice(STREETS[country]).replace("_", " ")
        number = self.rng.randint(1, 240)
        line = f"{street} {number}" if country == "DE" else f"{number} {street}"
        return town, line, make_postcode(self.rng, town)

    def _email(self, p: _Person) -> str:
        f, la = (p.first.lower(), p.last.lower().replace("'", ""))
        f, la = ("".join(_FOLD.get(c, c) for c in x) for x in (f, la))
        rng = self.rng
        local = rng.choice((f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}", f"{la}.{f}", f"{f}_{la}"))
        while True:
            tail = str(rng.randint(1, 999)) if rng.random() < 0.5 else ""
            candidate = f"{local}{tail}@{rng.choice(_DOMAINS[p.country])}".encode(
                "ascii", "ignore"
            ).decode()
            if candidate not in self.emails:
                self.emails.add(candidate)
                return candidate

    def _person(
        self, country: str, household: str, home: tuple[Town, str, str], **kw: Any
    ) -> _Person:
        rng = self.rng
        sex = kw.pop("sex", rng.choice("mf"))
        p = _Person(
            pid=f"P{len(self.people):07d}",
            country=country,
            sex=sex,
            first=kw.pop("first", rng.choice(FIRST_NAMES[country][sex])),
            last=kw.pop("last", rng.choice(LAST_NAMES[country])),
            dob=kw.pop("dob", date(1945, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))),
            town=home[0],
            street=home[1],
            postcode=home[2],
            household=household,
            **kw,
        )
        p.email = self._email(p) if rng.random() < 0.85 else None
        p.mobile = make_mobile(rng, p.town) if rng.random() < 0.85 else None
        if rng.random() < 0.12:
            p.old_home = self._home(country)
        self.people.append(p)
        return p

    def household(self, n: int) -> None:
        """One household: a single, a couple, or a family with children."""
        rng = self.rng
        country = rng.choices([c for c, _ in COUNTRIES], [w for _, w in COUNTRIES])[0]
        hid = f"H{len(self.people):07d}"
        home = self._home(country)
        kind = rng.choices(("single", "couple", "family"), (0.5, 0.25, 0.25))[0]
        members = [self._person(country, hid, home)]
        if kind != "single" and len(self.people) < n:
            a = members[0]
            partner_dob = a.dob + timedelta(days=rng.randint(-2500, 2500))
            b = self._person(country, hid, home, sex="f" if a.sex == "m" else "m", last=a.last,
                             dob=min(partner_dob, date(2000, 1, 1)))  # fmt: skip
            wife = b if b.sex == "f" else a
            if rng.random() < 0.5:
                wife.maiden = rng.choice(LAST_NAMES[country])
            if rng.random() < 0.2 and a.email:
                b.email, b.shared_email = a.email, True
            members.append(b)
        if kind == "family":
            father = next((m for m in members if m.sex == "m"), members[0])
            base = max(m.dob for m in members) + timedelta(days=365 * rng.randint(22, 34))
            kids = rng.choice((1, 2, 2, 3))
            twins = rng.random() < 0.15
            for i in range(kids):
                if len(self.people) >= n:
                    break
                if twins and i == 1:
                    dob = members[-1].dob
                else:
                    dob = base + timedelta(days=rng.randint(0, 365 * 6))
                if dob > date(2010, 12, 31):  # keep children old enough to shop
                    dob = date(2010, 12, 31) - timedelta(days=rng.randint(0, 4000))
                sex = rng.choice("mf")
                junior = i == 0 and father.sex == "m" and rng.random() < 0.25
                kw: dict[str, Any] = {"first": father.first, "sex": "m"} if junior else {"sex": sex}
                child = self._person(
                    country, hid, home, last=father.last, dob=dob, parent=father, **kw
                )
                if junior:
                    child.suffix, father.suffix = "Jr", "Sr"
                    self.negatives.append((father.pid, child.pid, "parent_child"))
                if twins and i == 1:
                    while child.first == members[-1].first:
                        child.first = rng.choice(FIRST_NAMES[country][child.sex])
                    self.negatives.append((members[-1].pid, child.pid, "twin"))
                members.append(child)
        landline = (
            make_landline(rng, home[0])
            if rng.random() < (0.6 if len(members) > 1 else 0.25)
            else None
        )
        for m in members:
            m.landline = landline
        tagged = {frozenset(t[:2]) for t in self.negatives}
        for x, y in combinations(members, 2):
            if frozenset((x.pid, y.pid)) not in tagged:
                self.negatives.append((x.pid, y.pid, "household"))

    def strangers(self) -> None:
        """Common-name strangers: some people share another's name (and a few their dob)."""
        rng = self.rng
        size: dict[str, int] = {}
        for q in self.people:
            size[q.household] = size.get(q.household, 0) + 1
        singles = [p for p in self.people if size[p.household] == 1]
        by_country = {c: [q for q in self.people if q.country == c] for c, _ in COUNTRIES}
        for p in rng.sample(singles, len(singles) // 20):
            other = rng.choice(by_country[p.country])
            if other.household == p.household:
                continue
            p.first, p.last, p.sex = other.first, other.last, other.sex
            relation = "common_name"
            if rng.random() < 0.15:
                p.dob, relation = other.dob, "same_name_dob"
            self.negatives.append((other.pid, p.pid, relation))

    def _name(self, p: _Person, tags: list[str]) -> tuple[str, str]:
        rng = self.rng
        first, last = p.first, p.last
        if p.maiden and rng.random() < 0.35:
            last = p.maiden
            tags.append("married_name")
        if first in NICKNAMES and rng.random() < 0.15:
            first = rng.choice(NICKNAMES[first])
            tags.append("nickname")
        if p.suffix and rng.random() < 0.5:
            last = f"{last} {p.suffix}"
            tags.append("suffix")
        if not (first + last).isascii():
            roll = rng.random()
            if roll < 0.3:
                first, last = ("".join(_FOLD.get(c, c) for c in x) for x in (first, last))
                tags.append("translit_fold")
            elif roll < 0.45:
                first, last = (x.encode("ascii", "ignore").decode() or x for x in (first, last))
                tags.append("translit_strip")
            elif roll < 0.52:
                first, last = (x.encode("utf-8").decode("latin-1") for x in (first, last))
                tags.append("mojibake")
        for key in ("first", "last"):
            if rng.random() < 0.04:
                if key == "first":
                    first = typo(self.rng, first)
                else:
                    last = typo(self.rng, last)
                tags.append(f"typo_{key}")
        if rng.random() < 0.03:
            first, last = last, first
            tags.append("swap")
        if rng.random() < 0.05:
            first, last = first.upper(), last.upper()
            tags.append("upper")
        return first, last

    def _phone(self, p: _Person, tags: list[str], source: str) -> str | None:
        rng = self.rng
        number, country = p.mobile, p.country
        if p.parent is not None and source == "pos" and p.parent.mobile and rng.random() < 0.5:
            number = p.parent.mobile
            tags.append("child_parent_phone")
        elif p.landline and (number is None or rng.random() < 0.3):
            number = p.landline
            tags.append("landline")
        if number is None:
            return None
        if rng.random() < 0.02:
            tags.append("phone_placeholder")
            return "0000000000"
        text, spelling = format_phone(rng, number, country)
        tags.append(spelling)
        return text

    def _typed_email(self, p: _Person, tags: list[str]) -> str | None:
        rng = self.rng
        if rng.random() < 0.02:
            tags.append("email_placeholder")
            return "noemail@example.com"
        email = p.email
        if email is None:
            return None
        local, domain = email.split("@")
        if domain == "gmail.com" and rng.random() < 0.3:
            local = local.replace(".", "") if "." in local else f"{local[:2]}.{local[2:]}"
            tags.append("gmail_dots")
        if domain == "gmail.com" and rng.random() < 0.15:
            domain = "googlemail.com"
            tags.append("googlemail")
        if rng.random() < 0.05:
            local += rng.choice(("+shop", "+news", "+offers"))
            tags.append("plus_tag")
        email = f"{local}@{domain}"
        if rng.random() < 0.08:
            email = email.capitalize() if rng.random() < 0.5 else email.upper()
            tags.append("email_case")
        return email

    def _dob(self, p: _Person, tags: list[str]) -> str:
        rng, dob = self.rng, p.dob
        if rng.random() < 0.02:
            tags.append("dob_placeholder")
            return "1900-01-01"
        if rng.random() < 0.04 and dob.day <= 12 and dob.day != dob.month:
            dob = dob.replace(day=dob.month, month=dob.day)
            tags.append("dob_swap")
        return dob.isoformat() if p.country == "US" or rng.random() < 0.5 else f"{dob:%d/%m/%Y}"

    def record(self, p: _Person, source: str, rid: str) -> tuple[dict[str, Any], list[str]]:
        """One registration of ``p`` in ``source``'s schema, and its pattern tags."""
        rng, tags = self.rng, list[str]()
        first, last = self._name(p, tags)
        town, street, postcode = p.town, p.street, p.postcode
        if p.old_home and rng.random() < 0.4:
            town, street, postcode = p.old_home
            tags.append("moved")
        if rng.random() < 0.03:
            street = typo(self.rng, street)
            tags.append("typo_street")
        values: dict[str, Any] = {
            "source_record_id": rid, "first_name": first, "last_name": last,
            "street": street, "city": town.name, "postcode": postcode,
            "phone": self._phone(p, tags, source) if source != "crm" else None,
            "email": self._typed_email(p, tags) if source != "pos" else None,
            "dob": self._dob(p, tags) if source != "pos" else None,
        }  # fmt: skip
        if source == "pos":
            self.loyalty += rng.randint(1, 40)
            values["loyalty_id"] = f"L{self.loyalty}"
        for key in ("phone", "email", "dob", "postcode", "street"):
            if values.get(key) is not None and rng.random() < 0.04:
                values[key] = None
                tags.append(f"missing_{key}")
        if source == "web" and values["email"] is None:
            values["email"] = self._typed_email(p, tags) or f"{rid.lower()}@guest.example.com"
        return {k: values.get(k) for k in RETAIL_SOURCES[source]}, tags


def generate_retail(n_people: int, seed: int = 11) -> RetailData:
    """``n_people`` people in households, registered in POS, web shop and CRM.

    Each person is in each source with some probability (at least one), and a few
    hold two loyalty cards or two web accounts. About 2 records per person.
    """
    base = _Base(seed)
    while len(base.people) < n_people:
        base.household(n_people)
    base.strangers()
    rng = base.rng
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in RETAIL_SOURCES}
    person_of: dict[str, str] = {}
    patterns_of: dict[str, list[str]] = {}
    chance = {"pos": 0.65, "web": 0.5, "crm": 0.75}
    again = {"pos": 0.05, "web": 0.04, "crm": 0.02}
    for p in base.people:
        chosen = [s for s in RETAIL_SOURCES if rng.random() < chance[s]] or [
            rng.choice(("pos", "crm"))
        ]
        for source in chosen:
            for _ in range(2 if rng.random() < again[source] else 1):
                rid = f"{source.upper()}{len(rows[source]) + 1:07d}"
                row, tags = base.record(p, source, rid)
                rows[source].append(row)
                person_of[f"{source}:{rid}"] = p.pid
                patterns_of[f"{source}:{rid}"] = tags
    return RetailData(rows, person_of, patterns_of, base.negatives, len(base.people))


def retail_model_frame(data: RetailData, default_region: str = "GB") -> pd.DataFrame:
    """The records as the importer would store them, in the identity model's columns."""
    import pandas as pd

    out = []
    for source, rows in data.sources.items():
        for row in rows:
            raw = {**row, "address": row.get("street")}
            norm = normalise_record(raw, default_region)
            out.append(
                {"unique_id": f"{source}:{row['source_record_id']}", "source_dataset": source}
                | {c: norm.get(c) for c in RETAIL_COLUMNS}
            )
    return pd.DataFrame(out, columns=["unique_id", "source_dataset", *RETAIL_COLUMNS])
