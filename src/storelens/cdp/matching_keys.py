"""Match keys derived from normalised records, and the veto that keeps look-alikes apart.

Normalisation makes each field comparable; these keys make *people* comparable the way
retail data needs: a sorted full name so ``Smith John`` meets ``John Smith``, umlaut
spellings folded both ways (``Mueller``/``Muller``), name suffixes split off (``Smith
Jr``), nicknames expanded to their given names (``Bill`` -> William, Willis…), the
canonical mailbox of an e-mail (gmail dots, googlemail, ``+tags``) and a phone's
national digits. :func:`clearly_different` is the household rule: one surname and one
address but another first name or birthday is another person, however much else they
share (landline, e-mail, a parent's mobile on a child's card).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from storelens.cdp.namesakes import home_key, namesake_homes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HOUSEHOLD_SHARE",
    "KEY_COLUMNS",
    "RecordVeto",
    "add_match_keys",
    "canonical_email",
    "clearly_different",
    "fold_name",
    "household_conflict",
    "name_forms",
    "shows_households",
    "surname_words",
    "two_cards_two_mailboxes",
    "vetoed",
]

KEY_COLUMNS = ("name_key", "last_key", "first_forms", "suffix", "email_key", "phone_digits")
_NEAR = 0.88
"""Jaro-Winkler similarity at which two first names are one name misspelt."""
_SUFFIXES = frozenset({"jr", "sr", "junior", "senior", "ii", "iii"})
_FOLDS = re.compile(r"(?:(?<=[^aeiou ])|(?<![a-z]))(ae|oe|ue)")
_HOUSE_NICKNAMES = {
    "hans": "johannes", "fritz": "friedrich", "steffi": "stefanie", "kathi": "katharina",
    "andi": "andreas", "tina": "christina", "basti": "sebastian", "tobi": "tobias",
    "max": "maximilian",
}  # fmt: skip
"""German forms the English ``nicknames`` list lacks."""


def fold_name(name: str | None) -> str | None:
    """``mueller`` -> ``muller``: German umlaut spellings folded onto the plain vowel."""
    if not name:
        return None
    return _FOLDS.sub(lambda m: m.group(0)[0], name)


@lru_cache(maxsize=65_536)
def name_forms(first: str) -> frozenset[str]:
    """A first name with the given names it may be short for (``bill`` -> william, …)."""
    forms = {first, *_namer().canonicals_of(first)}
    if first in _HOUSE_NICKNAMES:
        forms.add(_HOUSE_NICKNAMES[first])
    return frozenset(forms)


@lru_cache(maxsize=1)
def _namer() -> Any:
    from nicknames import NickNamer

    return NickNamer()


def canonical_email(email: str | None) -> str | None:
    """One mailbox, one key: ``+tags`` dropped everywhere, gmail dots and googlemail folded."""
    if not email or "@" not in email:
        return None
    local, domain = email.lower().rsplit("@", 1)
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def _split_suffix(name: str | None) -> tuple[str | None, str | None]:
    """``smith jr`` -> (``smith``, ``j``); a name without a suffix word is kept whole."""
    if not isinstance(name, str) or not name:
        return None, None
    words = name.split()
    if len(words) > 1 and words[-1] in _SUFFIXES:
        return " ".join(words[:-1]), words[-1][0]  # "j" or "s"
    return name, None


def add_match_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with :data:`KEY_COLUMNS` added (from first/last name, e-mail, phone).

    A suffix is split off either name: a form that swapped first and last name leaves
    ``baker jr`` in the first-name slot, and ``baker jr joshua`` would then meet no
    ``joshua baker``.
    """
    out = frame.copy()
    firsts_in = out["first_name"] if "first_name" in out else [None] * len(out)
    lasts = out["last_name"] if "last_name" in out else [None] * len(out)
    split_first = [_split_suffix(v) for v in firsts_in]
    split = [_split_suffix(v) for v in lasts]
    firsts = [first for first, _ in split_first]
    last_keys = [fold_name(last) for last, _ in split]
    if "first_name" in out:
        out["first_name"] = firsts
    out["last_name"] = [last for last, _ in split]
    out["suffix"] = [sl or sf for (_, sf), (_, sl) in zip(split_first, split, strict=True)]
    out["last_key"] = last_keys
    out["name_key"] = [
        " ".join(sorted(f"{fold_name(f) or ''} {la or ''}".split())) or None
        for f, la in zip(firsts, last_keys, strict=True)
    ]
    out["first_forms"] = [sorted(name_forms(f)) if f else None for f in firsts]
    emails = out["email"] if "email" in out else [None] * len(out)
    out["email_key"] = [canonical_email(e) for e in emails]
    phones = out["phone"] if "phone" in out else [None] * len(out)
    out["phone_digits"] = [p[-9:] if isinstance(p, str) else None for p in phones]
    return out


def _jaro(a: str, b: str) -> float:
    import jellyfish

    return float(jellyfish.jaro_winkler_similarity(a, b))


def _near(a: str | None, b: str | None) -> bool:
    return bool(a and b and (a == b or _jaro(a, b) >= _NEAR or _edits_at_most_one(a, b)))


def surname_words(frame: pd.DataFrame) -> frozenset[str]:
    """Words the data holds more often as a last name than as a first name (folded)."""
    from collections import Counter

    firsts = Counter(fold_name(v) for v in frame.get("first_name", ()) if isinstance(v, str))
    lasts = Counter(fold_name(v) for v in frame.get("last_name", ()) if isinstance(v, str))
    return frozenset(w for w, n in lasts.items() if w and n > firsts.get(w, 0))


def _one_name(x: str, y: str) -> bool:
    """One first name: equal or nickname-related, an initial, a near spelling, or one
    keying slip apart (directly or through a nickname's given name: ``ribert``/``bobby``)."""
    if fold_name(x) == fold_name(y) or (
        x[0] == y[0] and (min(len(x), len(y)) == 1 or x[:3] == y[:3])
    ):
        return True
    forms_x, forms_y = name_forms(x), name_forms(y)
    if forms_x & forms_y or _jaro(x, y) >= _NEAR or _stripped(x, y) or _stripped(y, x):
        return True
    return any(_edits_at_most_one(p, q) for p in forms_x for q in forms_y)


def _stripped(short: str, long: str) -> bool:
    """``gnther`` for ``günther``: an export that dropped the letters it could not
    encode leaves the name's other letters in order."""
    long = fold_name(long) or long
    if len(short) < 3 or not 0 < len(long) - len(short) <= 2:
        return False
    rest = iter(long)
    return all(c in rest for c in short)


def _first_names_related(
    a: Mapping[str, Any], b: Mapping[str, Any], surnames: Container[str] = ()
) -> bool:
    """:func:`_one_name`, or one record's first and last name swapped.

    A swap shows as one record's first name in the other's surname slot. Which record
    is swapped decides what to compare: for ``garcia james`` / ``ryan garcia``, garcia is
    a surname (``surnames``: words the data holds more often as a last name), so the first
    record is the swapped one and james meets ryan: two people. For ``ffion white`` /
    ``bell ffion`` (married and swapped), ffion is a first name and the two agree.
    """
    fa, fb = a["first_name"], b["first_name"]
    la, lb = fold_name(a.get("last_name")), fold_name(b.get("last_name"))
    if _one_name(fa, fb):
        return True
    for (f1, l1), (f2, l2) in (((fa, la), (fb, lb)), ((fb, lb), (fa, la))):
        if l2 and (_near(fold_name(f1), l2) or _one_name(f1, l2)):  # f1 in 2's surname slot
            if fold_name(f1) not in surnames and l2 not in surnames:
                return True  # record 2 is the swapped one: its real first name is f1
            if l1 and _one_name(l1, f2):
                return True  # record 1 is swapped: its real first name is l1
    return False


def _dobs_close(da: str, db: str) -> bool:
    """One birth date as a form might garble the other: day and month swapped, a single
    part wrong (a year only one slip or one year off: ``1957``/``1975``, ``1989``/``1990``,
    not ``1992``/``2005``), or two digits of the same year's month and day mistyped. A
    parent and child of one name, or two strangers, are years apart."""
    ya, ma, dd = da.split("-")
    yb, mb, de = db.split("-")
    if ya == yb and ma == de and dd == mb:
        return True
    if sum(x != y for x, y in ((ya, yb), (ma, mb), (dd, de))) == 1:
        return ya == yb or abs(int(ya) - int(yb)) <= 1 or _edits_at_most_one(ya, yb)
    return ya == yb and sum(x != y for x, y in zip(ma + dd, mb + de, strict=True)) <= 2


def _same_card(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """One card holder: the same loyalty card, or a card number one keying slip away on
    records that also carry the same birth date. Cards are numbered in sequence, so a
    number one digit off is on its own more likely a household member's card."""
    la, lb = a.get("loyalty_id"), b.get("loyalty_id")
    if not la or not lb:
        return False
    if la == lb:
        return True
    dob = a.get("dob")
    return bool(dob and dob == b.get("dob") and _edits_at_most_one(la, lb))


def two_cards_two_mailboxes(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two loyalty cards (not one card keyed with a slip) and two e-mail mailboxes: two
    people who share a name, not one person twice. A person with a second card keeps
    their mailbox, and one with a second mailbox their card. The unsupervised model
    weighs a rare full name heavily: on the demo's 600 CRM members, all different
    people, it merged 102 records, four "Paula Weber"s with four cards and four e-mails
    into one customer, and one Greta Haas then carried the other's consent."""
    la, lb = a.get("loyalty_id"), b.get("loyalty_id")
    ea, eb = a.get("email_key"), b.get("email_key")
    if not (la and lb and ea and eb and ea != eb) or _same_card(a, b):
        return False
    return _card_key(la) != _card_key(lb)


def _card_key(card: str) -> tuple[str, str]:
    """A card number as two systems may spell it alike: case, separators and leading
    zeros dropped (``LC-0012345``, ``lc0012345`` and ``12345`` are one card's digits)."""
    plain = re.sub(r"[\W_]+", "", card.casefold())
    digits = re.sub(r"\D", "", plain).lstrip("0")
    return (digits, "") if digits else ("", plain)


def _edits_at_most_one(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1."""
    import jellyfish

    return int(jellyfish.damerau_levenshtein_distance(a, b)) <= 1


def clearly_different(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    surnames: Container[str] = (),
    *,
    namesake_home: bool = False,
) -> bool:
    """Two records that cannot be one person, whatever they share.

    Only values both records hold count: a missing first name or birth date never fires
    the rule. True when both have first names that are not related (see
    :func:`_first_names_related`); or both have birth dates that are not close (see
    :func:`_dobs_close`); or their suffixes differ (``Jr`` vs ``Sr``); or either carries a
    suffix and their e-mail mailboxes differ (a suffix means a same-name parent or child
    lives there, so a second mailbox is more likely theirs than a second account), and so
    do different mailboxes where ``namesake_home`` (a record of this name at this postcode
    carries a suffix: :mod:`storelens.cdp.namesakes`). Never when both carry one
    loyalty card (see :func:`_same_card`).
    """
    if _same_card(a, b):
        return False
    fa, fb = a.get("first_name"), b.get("first_name")
    if fa and fb and fa != fb and not _first_names_related(a, b, surnames):
        return True
    sa, sb = a.get("suffix"), b.get("suffix")
    if sa and sb and sa != sb:
        return True
    ea, eb = a.get("email_key"), b.get("email_key")
    if ea and eb and ea != eb and (sa or sb or namesake_home):
        return True  # a suffix says a namesake shares the home: their mailboxes tell them apart
    da, db = a.get("dob"), b.get("dob")
    return bool(da and db and da != db and not _dobs_close(da, db))


class RecordVeto:
    """:func:`clearly_different` by record id, remembered (clustering asks many times)."""

    def __init__(self, df: pd.DataFrame, *, enabled: bool = True) -> None:
        self.enabled = enabled
        names = (
            "first_name",
            "last_name",
            "dob",
            "suffix",
            "loyalty_id",
            "email_key",
            "name_key",
            "postcode",
        )
        cols = [c for c in names if c in df.columns]
        self.rows = {
            str(u): {
                c: (v if isinstance(v, str) else None) for c, v in zip(cols, vals, strict=True)
            }
            for u, *vals in zip(df["unique_id"], *(df[c] for c in cols), strict=True)
        }
        self.surnames = surname_words(df)
        self.homes = namesake_homes(self.rows.values())
        self.seen: dict[tuple[str, str], bool] = {}

    def settle(self, record: str, sides: Sequence[Sequence[str]]) -> int | None:
        """Which of two namesakes' records a torn record with a suffix belongs with: the
        side holding the same suffix, else for ``Jr`` the side born later, for ``Sr`` the
        side born earlier, by more than a decade. None where the record says nothing."""
        suffix = self.rows.get(record, {}).get("suffix")
        if not self.enabled or not suffix or len(sides) < 2:
            return None
        same = [
            i
            for i, side in enumerate(sides)
            if any(self.rows[m].get("suffix") == suffix for m in side)
        ]
        if len(same) == 1:
            pick: int | None = same[0]
        else:
            born = [[str(d) for m in side if (d := self.rows[m].get("dob"))] for side in sides]
            if not all(born):
                return None
            years = [int(min(b)[:4]) for b in born]
            order = sorted(range(len(sides)), key=lambda i: years[i], reverse=suffix == "j")
            gap = abs(years[order[0]] - years[order[1]])
            pick = order[0] if gap > 10 else None
        if pick is None or any(self(record, m) for m in sides[pick]):
            return None
        return pick

    def __call__(self, a: str, b: str) -> bool:
        key = (a, b) if a < b else (b, a)
        if key not in self.seen:
            ra, rb = self.rows[a], self.rows[b]
            if two_cards_two_mailboxes(ra, rb):
                self.seen[key] = True  # on every kind of data, households or not
            elif not self.enabled:
                self.seen[key] = False
            else:
                home = home_key(ra)
                shared = home is not None and home == home_key(rb) and home in self.homes
                self.seen[key] = clearly_different(ra, rb, self.surnames, namesake_home=shared)
        return self.seen[key]


def vetoed(scored: pd.DataFrame, veto: RecordVeto) -> pd.DataFrame:
    """Scored pairs without those between clearly different people.

    Splink's additive weights cannot veto: a couple sharing surname, address, landline
    and e-mail outweighs two first names that differ. The household rule can.
    """
    keep = [
        not veto(a, b) for a, b in zip(scored["unique_id_l"], scored["unique_id_r"], strict=True)
    ]
    return scored.loc[keep] if len(scored) else scored


def household_conflict(df: pd.DataFrame, enabled: bool | None = None) -> RecordVeto:
    """The household rule (:func:`clearly_different`) by record id over ``df``'s
    normalised records, for clustering pairs scored elsewhere; ``enabled=None`` applies
    it where the records show households (:func:`shows_households`)."""
    keyed = add_match_keys(df.reset_index(drop=True))
    return RecordVeto(keyed, enabled=shows_households(keyed) if enabled is None else enabled)


HOUSEHOLD_SHARE = 0.03
"""Share of a source's records that share surname and postcode with someone of another
first initial, above which the data is taken to hold households. Measured: a retailer's
extracts (the retail generator) 46 %, the basic generator 4 % (2,000 people) to 7 %
(100,000), FEBRL4's files 2 %."""


_HOUSEHOLD_SAMPLE = 100_000
"""Records judged at most (whole postcodes), so the check stays cheap at a million."""


def shows_households(frame: pd.DataFrame) -> bool:
    """Whether the records hold households: within one source, people of one surname at
    one postcode with another first initial (a slip rarely changes the initial, and one
    source seldom holds a person twice). The source is ``source_dataset``, else the part
    of ``unique_id`` before a colon (the importer's ``source:record`` keys).

    The veto exists for such data; on data without them (FEBRL's files: one person per
    address, errors that replace a whole first name or birth date of a duplicate) that
    pattern is a duplicate with a replaced field, and the veto would only cut true pairs.
    """
    needed = ("first_name", "last_key", "postcode")
    if len(frame) == 0 or not all(c in frame.columns for c in needed):
        return True  # nothing to judge by: keep the safe side
    import pandas as pd

    if len(frame) > _HOUSEHOLD_SAMPLE:  # a share: whole postcodes, one in n, suffice
        every = -(-len(frame) // _HOUSEHOLD_SAMPLE)
        hashed = pd.util.hash_pandas_object(frame["postcode"], index=False)
        frame = frame[(hashed % every == 0).to_numpy()]
    if "source_dataset" in frame.columns:
        source = [str(s) for s in frame["source_dataset"]]
    elif "unique_id" in frame.columns:  # the importer's record keys are ``source:record``
        source = [str(u).split(":", 1)[0] for u in frame["unique_id"]]
    else:
        source = [""] * len(frame)
    keyed = pd.DataFrame(
        {
            "source": source,
            "last_key": frame["last_key"].to_numpy(),
            "postcode": frame["postcode"].to_numpy(),
            "initial": [f[:1] if isinstance(f, str) else None for f in frame["first_name"]],
        }
    ).dropna()
    if keyed.empty:
        return True
    groups = keyed.groupby(["source", "last_key", "postcode"], sort=False)["initial"]
    initials, sizes = groups.nunique(), groups.size()
    return bool(sizes[initials > 1].sum() / len(keyed) > HOUSEHOLD_SHARE)
