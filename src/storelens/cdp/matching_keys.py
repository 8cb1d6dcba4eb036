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
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "add_match_keys",
    "canonical_email",
    "clearly_different",
    "fold_name",
    "name_forms",
]

KEY_COLUMNS = ("name_key", "last_key", "first_forms", "suffix", "email_key", "phone_digits")
_SUFFIXES = frozenset({"jr", "sr", "junior", "senior", "ii", "iii"})
_FOLDS = re.compile(r"(?<=[^aeiou ])(ae|oe|ue)")
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


def _split_suffix(last: str | None) -> tuple[str | None, str | None]:
    if not last:
        return None, None
    words = last.split()
    if len(words) > 1 and words[-1] in _SUFFIXES:
        return " ".join(words[:-1]), words[-1][0]  # "j" or "s"
    return last, None


def add_match_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with :data:`KEY_COLUMNS` added (from first/last name, e-mail, phone)."""
    out = frame.copy()
    firsts = out["first_name"] if "first_name" in out else [None] * len(out)
    lasts = out["last_name"] if "last_name" in out else [None] * len(out)
    split = [_split_suffix(v) for v in lasts]
    last_keys = [fold_name(last) for last, _ in split]
    out["last_name"] = [last for last, _ in split]
    out["suffix"] = [s for _, s in split]
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


def clearly_different(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two records that cannot be one person, whatever they share.

    True when both have first names and they are neither equal, nickname-related,
    one an initial of the other, a near spelling, nor a first/last swap; or both have
    dates of birth more than a day/month swap or a single typo apart; or their
    suffixes differ (``Jr`` vs ``Sr``). Never when both carry one loyalty id.
    """
    if a.get("loyalty_id") and a.get("loyalty_id") == b.get("loyalty_id"):
        return False  # one card, one holder (cards are numbered in sequence: no fuzz here)
    fa, fb = a.get("first_name"), b.get("first_name")
    if fa and fb and fa != fb:
        swapped = fa == fold_name(b.get("last_name")) or fb == fold_name(a.get("last_name"))
        related = (
            swapped
            or (fa[0] == fb[0] and (min(len(fa), len(fb)) == 1 or fa[:3] == fb[:3]))
            or bool(name_forms(fa) & name_forms(fb))
            or _jaro(fa, fb) >= 0.88
        )
        if not related:
            return True
    sa, sb = a.get("suffix"), b.get("suffix")
    if sa and sb and sa != sb:
        return True
    da, db = a.get("dob"), b.get("dob")
    if da and db and da != db:
        ya, ma, dd = da.split("-")
        yb, mb, de = db.split("-")
        swap = ya == yb and ma == de and dd == mb
        one_part = sum(x != y for x, y in ((ya, yb), (ma, mb), (dd, de))) == 1
        if not swap and not one_part:
            return True
    return False
