"""Identifiers of entities and persons: normalise, classify, check, mask.

python-stdnum checks resident IDs (GB 11643) and LEIs (ISO 17442). For the USCC it
requires digits in the first eight positions, while GB 32100 also gives letters to
registration authorities (N agriculture, Y others...); and its USCC check is only the
shape and the check character. So the USCC is checked here, over the full alphabet,
with the same weights (tests compare the two on stdnum's range).
"""

from __future__ import annotations

import re
import unicodedata
from operator import mul
from dataclasses import dataclass

from stdnum import lei as _lei
from stdnum.cn import ric as _ric
from stdnum.exceptions import ValidationError as _StdnumError

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")
_ORG_CODE_SHAPE = re.compile(r"^[0-9A-Z]{8}[0-9X]$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_REG_NO_SHAPE = re.compile(r"^[0-9]{15}$")
_RIC_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # GB 11643: ISO 7064 MOD 11-2
_RIC_CHECK = "10X98765432"
_SPACES = re.compile(r"[\s\-_.]+")


def normalise_code(value: str) -> str:
    """Full-width to half-width, upper case, no spaces, dashes or dots."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def uscc_check_character(first17: str) -> str:
    total = sum(map(mul, map(_USCC_VALUE.__getitem__, first17), _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_character(first8: str) -> str:
    """GB 11714 mod 11 check of the organisation code embedded in a USCC."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def is_valid_uscc(code: str) -> bool:
    """The USCC check character holds (over the full alphabet, letters in front included)."""
    return bool(_USCC_SHAPE.match(code)) and uscc_check_character(code[:17]) == code[17]


def is_valid_resident_id(code: str) -> bool:
    # The ISO 7064 check first: stdnum's checks cost ~10 us, and most 18-digit codes that get
    # here are USCCs (every identifier screened is asked whether it is a person's, to mask it).
    if not _RIC_SHAPE.match(code) or _RIC_CHECK[sum(map(mul, map(int, code[:17]), _RIC_WEIGHTS)) % 11] != code[17]:
        return False
    try:
        return _ric.is_valid(code)
    except KeyError:  # stdnum's region table has prefixes without counties (e.g. 212154): unknown region
        return False


def is_valid_lei(code: str) -> bool:
    try:
        _lei.validate(code)
    except _StdnumError:
        return False
    return True


def is_valid_org_code(code: str) -> bool:
    return bool(_ORG_CODE_SHAPE.match(code)) and org_code_check_character(code[:8]) == code[8]


@dataclass(frozen=True, slots=True)
class ClassifiedCode:
    """What a code given in a file turned out to be."""

    value: str  # normalised; for an unrecognised code, as given (trimmed)
    scheme: str  # uscc | reg_no | org_code | resident_id | lei | unknown
    verified: bool
    warning: str | None = None


def classify_code(raw: str, prefer: str = "uscc") -> ClassifiedCode | None:
    """Recognise a code by shape and check; never silently accept a failed check.

    Returns None for an empty value. An 18-digit value can pass both the USCC and the
    resident-ID checks: `prefer` (the scheme the column is meant for) decides. A USCC-shaped code with a wrong check character
    is kept as an unverified USCC with a warning; anything unrecognisable is kept as
    given, unverified, with a warning.
    """
    value = normalise_code(raw)
    if not value:
        return None
    if len(value) == 18:
        uscc_ok = is_valid_uscc(value)
        ric_ok = (prefer == "resident_id" or not uscc_ok) and is_valid_resident_id(value)
        if ric_ok:
            return ClassifiedCode(value, "resident_id", True)
        if uscc_ok:
            return ClassifiedCode(value, "uscc", True)
        # In a person's column a failed 18-digit value is a person's ID number: never
        # echo it unmasked in a warning as if it were a USCC.
        if prefer == "resident_id" and _RIC_SHAPE.match(value):
            return ClassifiedCode(value, "resident_id", False, f"ID number {mask_person_id(value)} fails its check")
        if _USCC_SHAPE.match(value):
            return ClassifiedCode(value, "uscc", False, f"USCC {value} fails its check character")
        if _RIC_SHAPE.match(value):
            return ClassifiedCode(value, "resident_id", False, f"ID number {mask_person_id(value)} fails its check")
    elif _REG_NO_SHAPE.match(value):
        return ClassifiedCode(value, "reg_no", True)
    elif len(value) == 9 and _ORG_CODE_SHAPE.match(value):
        if is_valid_org_code(value):
            return ClassifiedCode(value, "org_code", True)
        return ClassifiedCode(value, "org_code", False, f"organisation code {value} fails its check character")
    elif len(value) == 20 and is_valid_lei(value):
        return ClassifiedCode(value, "lei", True)
    return ClassifiedCode(raw.strip(), "unknown", False, f"code {raw.strip()!r} is not a recognised identifier")


def mask_person_id(value: str) -> str:
    """Public form of a person's ID number: region prefix and last four kept (110101********123X)."""
    value = normalise_code(value)
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


_PERSON_ID_SHAPE = re.compile(r"^(?:[0-9]{17}[0-9X]|[0-9]{15})$")


def mask_record_key(record_key: str) -> str:
    """A record key with a person's ID number as its subject part (court:案号#ID) masked.

    A valid ID number is masked even where it also passes the USCC check (an all-digit
    value can pass both); anything else shaped like an ID number is masked unless it is a
    valid USCC: an ID number with a typo in it is still somebody's ID number.
    """
    number, sep, subject = record_key.rpartition("#")
    code = normalise_code(subject) if sep else ""
    if sep and _PERSON_ID_SHAPE.match(code) and (is_valid_resident_id(code) or not is_valid_uscc(code)):
        return f"{number}#{mask_person_id(subject)}"
    return record_key

