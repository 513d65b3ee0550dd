"""Identifiers of entities and persons: normalise, classify, check, mask.

Resident ID numbers (GB 11643) are checked here: the check character, a real birth date
not after today, and a province code in front. Not the county: python-stdnum refuses
numbers whose region did not exist in its table for the birth year, but the region is
where the number was issued, and real numbers carry codes missing from every published
table. First-generation 15-digit numbers (GB 11643-1989) are read where the subject is a
person and converted to 18 digits. python-stdnum checks LEIs (ISO 17442). For the USCC it
requires digits in the first eight positions, while GB 32100 also gives letters to
registration authorities (N agriculture, Y others...); and its USCC check is only the
shape and the check character. So the USCC is checked here, over the full alphabet,
with the same weights (tests compare the two on stdnum's range).
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from collections.abc import Callable
from operator import mul
from dataclasses import dataclass

import datetime as dt

from stdnum import lei as _lei
from stdnum.exceptions import InvalidChecksum as _InvalidChecksum, InvalidComponent as _InvalidComponent
from stdnum.exceptions import ValidationError as _StdnumError

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$")
# the letters GB 32100 leaves out of the USCC alphabet because they are mistaken for 1, 0, 5, U and 2
_MISTAKEN = str.maketrans("IOSVZ", "105U2")
_ORG_CODE_SHAPE = re.compile(r"^[0-9A-Z]{8}[0-9X]$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}
_ORG_CHECK = "0123456789X0"  # by 11 - sum mod 11 (1 to 11): 10 is X, 11 is 0
_REG_NO_SHAPE = re.compile(r"^[0-9]{15}$")
_RIC_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # GB 11643: ISO 7064 MOD 11-2
_RIC_CHECK = "10X98765432"
_RIC15_SHAPE = re.compile(r"^[0-9]{15}$")
# GB/T 2260 province-level codes: 11-65 on the mainland, 71 Taiwan, 81-83 Hong Kong, Macao (and
# 83 issued to residents of Taiwan), 91 for numbers issued abroad.
PROVINCE_CODES = frozenset([*range(11, 66), 71, 81, 82, 83, 91])
PERSON = "natural_person"
# Invisible characters that a code or a text copied from a web page, a PDF, a word processor or a
# Windows dialog carries (a regex class's content): soft hyphens, the combining grapheme joiner, the
# Arabic letter mark, Mongolian variation selectors and vowel separator, zero-width spaces and joiners,
# direction marks, embeddings (Windows puts U+202A before a number copied from a properties dialog) and
# isolates, the word joiner and invisible operators, variation selectors, byte order marks. They show
# nothing: the code reads whole.
INVISIBLE = "\u00ad\u034f\u061c\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff"
# spaces, dashes (the en and em dashes and the minus sign a word processor puts for a typed hyphen
# too), underscores, dots, and the invisible characters
_SPACES = re.compile(rf"[\s\-\u2010-\u2015\u2212_.{INVISIBLE}]+")


# Cyrillic and Greek letters drawn like the Latin ones a code holds (a Russian keyboard layout, a
# document's font, or a listed firm's own copy): NFKC keeps them apart, so 小米's USCC written with a
# Cyrillic А answered not_found instead of 小米's deny
_LOOKALIKES = str.maketrans("АВСЕНКМОРТХУІЈЅасеорху" "ΑΒΕΗΙΚΜΝΟΡΤΥΧΖ",
                            "ABCEHKMOPTXYIJSaceopxy" "ABEHIKMNOPTYXZ")


def normalise_code(value: str) -> str:
    """Full-width to half-width, Cyrillic and Greek lookalikes to Latin, upper case, no spaces, dashes
    of any kind, dots or zero-width characters."""
    if value.isascii() and value.isalnum():  # most codes: NFKC and the regex change nothing; a third of the time
        return value.upper()
    return _SPACES.sub("", unicodedata.normalize("NFKC", value).translate(_LOOKALIKES)).upper()


def uscc_check_character(first17: str) -> str:
    total = sum(map(mul, map(_USCC_VALUE.__getitem__, first17), _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_character(first8: str) -> str:
    """GB 11714 mod 11 check of the organisation code embedded in a USCC."""
    return _ORG_CHECK[11 - sum(map(mul, map(_ORG_VALUE.__getitem__, first8), _ORG_WEIGHTS)) % 11]


def is_valid_uscc(code: str) -> bool:
    """The USCC check character holds (over the full alphabet, letters in front included)."""
    return bool(_USCC_SHAPE.match(code)) and uscc_check_character(code[:17]) == code[17]


def resident_id_check_character(first17: str) -> str:
    return _RIC_CHECK[sum(map(mul, map(int, first17), _RIC_WEIGHTS)) % 11]


def _birth_date(yyyymmdd: str) -> dt.date | None:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def is_valid_resident_id(code: str, today: dt.date | None = None) -> bool:
    """An 18-character ID number: check character, province code, a real birth date.

    With `today` (the pack's), a birth date after it is refused too; without it the date
    only has to exist (enough for masking: a wider net hides more).
    """
    if not _RIC_SHAPE.match(code) or resident_id_check_character(code[:17]) != code[17]:
        return False
    if int(code[:2]) not in PROVINCE_CODES:
        return False
    born = _birth_date(code[6:14])
    return born is not None and (today is None or born <= today)


_DIGITS_10_TO_17 = re.compile(r"^[0-9]{10,17}$")


def could_start_a_resident_id(code: str) -> bool:
    """10 to 17 digits that an ID number could begin with: a province code, then after the
    county a birth year from 1900 to 2099. A search refuses them as it refuses whole numbers:
    a prefix would complete to somebody's number."""
    return (bool(_DIGITS_10_TO_17.match(code)) and int(code[:2]) in PROVINCE_CODES
            and 1900 <= int(code[6:10]) <= 2099)


def first_generation_to_18(code: str) -> str | None:
    """A 15-digit ID number (region, YYMMDD, sequence) as 18 digits, or None if it cannot be one.

    First-generation numbers were issued to people born in the 1900s: 19YYMMDD.
    """
    if not _RIC15_SHAPE.match(code) or int(code[:2]) not in PROVINCE_CODES:
        return None
    if _birth_date("19" + code[6:12]) is None:
        return None
    first17 = code[:6] + "19" + code[6:]
    return first17 + resident_id_check_character(first17)


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


def classify_code(raw: str, prefer: str = "uscc", *, subject_kind: str | None = None,
                  today: dt.date | None = None) -> ClassifiedCode | None:
    """Recognise a code by shape and check; never silently accept a failed check.

    Returns None for an empty value. `prefer` is the scheme the column is meant for; the
    subject kind, when known, decides over it: a natural person's 18-digit or 15-digit code
    is a resident ID number whatever its column (about one ID number in 31 also passes the
    USCC check). Otherwise an 18-digit value passing both checks is what `prefer` says, and
    15 digits are a legacy registration number. A USCC-shaped code with a wrong check
    character is kept as an unverified USCC with a warning; anything unrecognisable is
    kept as given, unverified, with a warning. `today` (the pack's) refuses ID numbers
    born after it. The letters a USCC never holds (I, O, S, V, Z) are read as the digits and
    letter they are mistaken for where that makes a valid USCC, with a warning.
    """
    value = normalise_code(raw)
    if not value:
        return None
    person = subject_kind == PERSON or (subject_kind is None and prefer == "resident_id")
    if (len(value) == 18 and not person and not _USCC_SHAPE.match(value)
            and is_valid_uscc(read := value.translate(_MISTAKEN)) and not could_start_a_resident_id(read[:17])):
        return ClassifiedCode(read, "uscc", True, f"USCC {value} read as {read} (I, O, S, V, Z are no USCC characters)")
    if len(value) == 18:
        if subject_kind == PERSON and _RIC_SHAPE.match(value):
            if is_valid_resident_id(value, today):
                return ClassifiedCode(value, "resident_id", True)
            return ClassifiedCode(value, "resident_id", False, f"ID number {mask_person_id(value)} fails its check")
        uscc_ok = is_valid_uscc(value)
        # An organisation has no ID number: in its code column, a value failing the USCC check
        # is a corrupted USCC even where it passes an ID number's check (1 in 11 digit strings).
        # An individual business is run by a person, whose ID number may stand for it.
        organisation = subject_kind not in (None, PERSON, "individual_business") and prefer != "resident_id"
        ric_ok = not organisation and (person or not uscc_ok) and is_valid_resident_id(value, today)
        if ric_ok:
            return ClassifiedCode(value, "resident_id", True)
        if uscc_ok:
            return ClassifiedCode(value, "uscc", True)
        # In a person's column a failed 18-digit value is a person's ID number: never
        # echo it unmasked in a warning as if it were a USCC.
        if person and _RIC_SHAPE.match(value):
            return ClassifiedCode(value, "resident_id", False, f"ID number {mask_person_id(value)} fails its check")
        if _USCC_SHAPE.match(value):
            # an ID number with a typo fails both checks: it is still somebody's number, never echoed
            shown = mask_person_id(value) if could_start_a_resident_id(value[:17]) else value
            return ClassifiedCode(value, "uscc", False, f"USCC {shown} fails its check character")
        if _RIC_SHAPE.match(value):
            return ClassifiedCode(value, "resident_id", False, f"ID number {mask_person_id(value)} fails its check")
    elif _REG_NO_SHAPE.match(value):
        if person:
            converted = first_generation_to_18(value)
            if converted is not None and (today is None or _birth_date(converted[6:14]) <= today):
                return ClassifiedCode(converted, "resident_id", True)
            if subject_kind == PERSON:  # a person has no registration number: a broken ID number
                return ClassifiedCode(value, "resident_id", False,
                                      f"15-digit ID number {mask_person_id(value)} has no valid birth date or province")
        return ClassifiedCode(value, "reg_no", True)
    elif len(value) == 9 and _ORG_CODE_SHAPE.match(value):
        if is_valid_org_code(value):
            return ClassifiedCode(value, "org_code", True)
        return ClassifiedCode(value, "org_code", False, f"organisation code {value} fails its check character")
    elif len(value) == 20 and is_valid_lei(value):
        return ClassifiedCode(value, "lei", True)
    return ClassifiedCode(raw.strip(), "unknown", False, f"code {raw.strip()!r} is not a recognised identifier")


# the number as clerks type it: 18 or 15 digits, possibly grouped by spaces or dashes (110101 19900307 1234)
_ID_AT_END = re.compile(r"[\s(（:：,，]*(?:身份证号码?|公民身份号码|证件号码)?[\s:：]*"
                        r"(?<![0-9])(?P<number>[0-9](?:[ \-]?[0-9]){16}[ \-]?[0-9Xx]|[0-9](?:[ \-]?[0-9]){14})"
                        r"[\s)）]*$")


def split_person_id(name: str) -> tuple[str, str] | None:
    """A name cell holding a person's ID number after the name ("吴九110101199003071234"):
    (name, number), or None when the cell ends in no such number."""
    found = _ID_AT_END.search(name)
    if found is None or found.start() == 0:
        return None
    written = found.group("number")
    number = re.sub(r"[ \-]", "", written).upper()
    # grouped digits are an ID number only when shaped like one (a phone number with an extension is not)
    if number != written.upper() and not (could_start_a_resident_id(number[:17]) if len(number) == 18
                                          else first_generation_to_18(number) is not None):
        return None
    return name[:found.start()].strip(), number


def mask_person_id(value: str) -> str:
    """Public form of a person's ID number: region prefix and last four kept (110101********123X)."""
    value = normalise_code(value)
    if len(value) <= 10:
        return "*" * len(value)
    if len(value) == 17:  # the check character cut off: the birth date hidden all the same (110101********123)
        return value[:6] + "*" * 8 + value[14:]
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


_PERSON_ID_SHAPE = re.compile(r"^(?:[0-9]{17}[0-9X]|[0-9]{15})$")
# A travel document's number: a passport (E12345678, EA1234567), a mainland travel permit of Hong Kong,
# Macau or Taiwan residents (H1234567801, M12345678, 12345678), a Hong Kong or Macau identity card
# (A1234563): 6 to 12 letters and digits, at least 6 of them digits. A firm's code never is one
# (a USCC has 18 characters, a registration number 13 or 15 digits), except a 9-character
# organisation code, told apart by its check character unless the number reads as a passport's or permit's.
_DOCUMENT_NUMBER_SHAPE = re.compile(r"^(?=(?:[A-Z]*[0-9]){6})[0-9A-Z]{6,12}$")
_PASSPORT_OR_PERMIT_SHAPE = re.compile(r"^(?:[EGDSP][A-Z]?[0-9]{7,8}|[HM][0-9]{8}(?:[0-9]{2})?)$")


def is_document_number(code: str) -> bool:
    """Whether a normalised code reads as a person's travel document or identity card number (above)."""
    return bool(_DOCUMENT_NUMBER_SHAPE.match(code)) and (
        bool(_PASSPORT_OR_PERMIT_SHAPE.match(code)) or not is_valid_org_code(code))


def mask_document_number(value: str) -> str:
    """Public form of a travel document's number: its last two characters only (a short number shows
    no more than that, where an ID number keeps its region and last four)."""
    value = normalise_code(value)
    return "*" * (len(value) - 2) + value[-2:]


def mask_record_key(record_key: str) -> str:
    """A record key with a person's ID number (or travel document's number) as its subject part
    (court:案号#ID) masked.

    A valid ID number is masked even where it also passes the USCC check (an all-digit
    value can pass both); anything else shaped like an ID number is masked unless it is a
    valid USCC: an ID number with a typo in it is still somebody's ID number.
    """
    number, sep, subject = record_key.rpartition("#")
    return f"{number}#{mask_subject_code(subject)}" if sep else record_key


def mask_subject_code(value: str) -> str:
    """A record's subject code (the subject part of its key) as even the console shows it: a person's
    ID number or travel document's number masked (`mask_record_key`'s rule), a firm's code whole."""
    code = normalise_code(value)
    if _PERSON_ID_SHAPE.match(code) and (is_valid_resident_id(code) or not is_valid_uscc(code)):
        return mask_person_id(value)
    if is_document_number(code):  # a person named by passport or permit: no resident ID to verify
        return mask_document_number(value)
    return value



# -- a pack's identifier schemes ---------------------------------------------------------------------------

# The schemes read by this module's own rules (`validator: builtin`). The rules know one another (an
# 18-digit code is a USCC or an ID number by its checks and the subject's kind; 15 digits are a
# registration number or a first-generation ID number), so they are one reader.
BUILTIN_SCHEMES = ("uscc", "org_code", "reg_no", "resident_id", "lei")
_STDNUM_NAME = re.compile(r"^stdnum(?:\.[a-z][a-z0-9_]*)+$")
# python-stdnum's validators of natural persons' numbers (identity, social security, birth and
# personal tax numbers). Public surfaces mask a pack's scheme only when it is declared `person: true`:
# a pack may declare such a validator only with that flag.
PERSON_NUMBER_VALIDATORS = frozenset(f"stdnum.{name}" for name in (
    "ar.dni at.vnr be.eid be.ssn bg.egn bg.pnf br.cpf ca.bc_phn ca.sin ch.ssn cn.ric cr.cpf cu.ni cz.rc "
    "de.idnr dk.cpr do.cedula ec.ci ee.ik es.dni es.nie fi.hetu fr.nir gb.nhs gr.amka id.nik ie.pps "
    "il.idnr in_.aadhaar in_.epic in_.vid it.codicefiscale jp.in_ kr.rrn lt.asmens mu.nid mx.curp my.nric "
    "nl.bsn no.fodselsnummer pe.cui pk.cnic pl.pesel pt.cc ro.cnp se.personnummer si.emso sk.rc th.pin "
    "tr.tckimlik ua.rntrc us.itin us.ssn za.idnr").split())


def stdnum_validator(name: str) -> Callable[[str], str]:
    """The `validate` function of the python-stdnum module a pack names (`stdnum.fr.siren`); a
    ValueError saying why not for a name that is none."""
    if not _STDNUM_NAME.match(name):
        raise ValueError(f"{name!r} is not a validator: `builtin` or a python-stdnum module (stdnum.fr.siren)")
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise ValueError(f"python-stdnum has no module {name!r} (stdnum.fr.siren, stdnum.ean...)") from None
    validate = getattr(module, "validate", None)
    if not callable(validate):
        raise ValueError(f"{name!r} is a python-stdnum package, not a validator: name a module of it")
    return validate


@dataclass(frozen=True, slots=True)
class _OtherScheme:
    """A scheme a pack declares with a python-stdnum validator, a pattern, or both."""

    scheme: str
    validate: Callable[[str], str] | None
    shape: re.Pattern[str] | None

    def read(self, code: str) -> tuple[bool, str] | None:
        """(whether the check holds, the code as the scheme writes it), or None: not of this scheme."""
        if self.shape is not None and not self.shape.fullmatch(code):
            return None
        if self.validate is None:  # a pattern alone: the shape is the whole check
            return True, code
        try:
            return True, self.validate(code)
        except (_InvalidChecksum, _InvalidComponent):  # its shape, a wrong check digit or part
            return False, code
        except _StdnumError:  # another length or alphabet: another scheme's
            return None


class CodeReader:
    """What a code is under one pack's identifier schemes, their validators resolved once.

    The built-in schemes are read by `classify_code`, whose answer counts only for a scheme the
    pack declares; the pack's other schemes are tried in their order, the first whose check holds
    taking the code, else the first whose shape it has (unverified, with a warning). A pack of
    exactly the built-in schemes (cn) reads codes by `classify_code` alone, as fast as ever.
    """

    def __init__(self, schemes: tuple[tuple[str, str | None, str | None], ...]):
        """`schemes`: (scheme, validator, pattern) as the pack declares them."""
        self.builtin = frozenset(scheme for scheme, validator, _ in schemes if validator == "builtin")
        self.others = tuple(_OtherScheme(scheme, stdnum_validator(validator) if validator else None,
                                         re.compile(pattern) if pattern else None)
                            for scheme, validator, pattern in schemes if validator != "builtin")
        self.only_builtin = not self.others and self.builtin == frozenset(BUILTIN_SCHEMES)
        if self.only_builtin:  # cn: classify_code itself, not a call more per code (1M-row ingests)
            self.classify = classify_code  # type: ignore[method-assign]

    def classify(self, raw: str, prefer: str = "uscc", *, subject_kind: str | None = None,
                 today: dt.date | None = None) -> ClassifiedCode | None:
        code = normalise_code(raw)
        if not code:
            return None
        builtin = classify_code(raw, prefer, subject_kind=subject_kind, today=today) if self.builtin else None
        if builtin is not None and builtin.scheme in self.builtin and builtin.verified:
            return builtin
        failed = None
        for scheme in self.others:
            read = scheme.read(code)
            if read is not None and read[0]:
                return ClassifiedCode(read[1], scheme.scheme, True)
            if read is not None and failed is None:
                failed = ClassifiedCode(code, scheme.scheme, False, f"{scheme.scheme} {code} fails its check")
        if builtin is not None and builtin.scheme in self.builtin:
            return builtin
        return failed or ClassifiedCode(raw.strip(), "unknown", False,
                                        f"code {raw.strip()!r} is not a recognised identifier")


@functools.lru_cache(maxsize=16)
def code_reader(schemes: tuple[tuple[str, str | None, str | None], ...]) -> CodeReader:
    """One reader per set of schemes: a pack's validators are imported and its patterns compiled once."""
    return CodeReader(schemes)
