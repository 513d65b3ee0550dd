"""Adversarial inputs against issue 15's surfaces (open data, webhooks, relations, foreign lists):
what the demo never sends, each a defect found and fixed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from worlds import resident_id
from xinyong.services.lists.foreign import ForeignListError, parse_ftm, parse_un

PERSON_ID = resident_id("110101", dt.date(1980, 5, 12), 123)

UN_WITH_ENTITY = ('<?xml version="1.0" encoding="{encoding}"?>'
                  '<!DOCTYPE CONSOLIDATED_LIST [<!ENTITY a "INJECTED">]>'
                  '<CONSOLIDATED_LIST dateGenerated="2026-01-15T08:00:00.000Z"><ENTITIES><ENTITY>'
                  '<DATAID>1</DATAID><FIRST_NAME>&a; TRADING</FIRST_NAME></ENTITY></ENTITIES></CONSOLIDATED_LIST>')


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-8"])
def test_un_list_refuses_a_dtd_in_any_encoding_expat_reads(encoding: str) -> None:
    """A UTF-16 file without a byte-order mark is read by expat from its first bytes; a text
    search for "<!DOCTYPE" in it found nothing and its entities were expanded."""
    data = UN_WITH_ENTITY.format(encoding="UTF-8" if encoding == "utf-8" else "UTF-16").encode(encoding)
    with pytest.raises(ForeignListError, match="a DOCTYPE or entity declaration is refused"):
        parse_un(data, "un.xml", keep_persons=False)


def test_un_list_refuses_an_external_dtd_and_a_billion_laughs() -> None:
    external = ('<?xml version="1.0"?><!DOCTYPE CONSOLIDATED_LIST SYSTEM "file:///etc/passwd">'
                '<CONSOLIDATED_LIST dateGenerated="2026-01-15"/>').encode("utf-16-le")
    laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY l0 "ha">'
              + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
              + ']><CONSOLIDATED_LIST dateGenerated="2026-01-15"><ENTITIES><ENTITY><DATAID>1</DATAID>'
              '<FIRST_NAME>&l9;</FIRST_NAME></ENTITY></ENTITIES></CONSOLIDATED_LIST>').encode("utf-16-be")
    for data in (external, laughs):
        with pytest.raises(ForeignListError, match="a DOCTYPE or entity declaration is refused"):
            parse_un(data, "un.xml", keep_persons=False)


def _ftm(tmp_path: Path, *entities: dict) -> Path:
    path = tmp_path / "entities.ftm.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entities))
    return path


def test_ftm_legal_entity_with_an_id_number_is_a_person(tmp_path: Path) -> None:
    """OpenSanctions files subjects of unknown kind as LegalEntity: one whose tax or ID number is a
    resident ID number is a person, kept only under a legal basis (it was kept as an organisation)."""
    path = _ftm(tmp_path,
                {"id": "le-1", "schema": "LegalEntity", "properties": {"name": ["张三"], "taxNumber": [PERSON_ID]}},
                {"id": "le-2", "schema": "LegalEntity", "properties": {"name": ["李四"], "idNumber": [PERSON_ID]}},
                {"id": "co-1", "schema": "Company", "properties": {"name": ["Example Front Ltd"]}})
    parsed = parse_ftm(path, "entities.ftm.jsonl", keep_persons=False)
    assert [d.source_id for d in parsed.designations] == ["co-1"] and parsed.persons_skipped == 2
    kept = parse_ftm(path, "entities.ftm.jsonl", keep_persons=True)
    assert [d.source_id for d in kept.designations] == ["le-1", "le-2", "co-1"]


def test_ftm_refused_identifier_examples_never_show_an_id_number_whole(tmp_path: Path) -> None:
    """A company's taxNumber that is somebody's ID number fails as a USCC: the example refused showed
    the number whole (its warning masked it)."""
    path = _ftm(tmp_path, {"id": "co-1", "schema": "Company",
                           "properties": {"name": ["Example Front Ltd"], "taxNumber": [PERSON_ID]}})
    parsed = parse_ftm(path, "entities.ftm.jsonl", keep_persons=False)
    assert parsed.identifiers_refused == 1
    assert PERSON_ID not in repr(parsed.refused_examples) and PERSON_ID[-4:] in parsed.refused_examples[0]["value"]


def test_an_empty_ftm_file_is_refused(tmp_path: Path) -> None:
    """A download that came back empty would end every designation of the list on re-import."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n")
    with pytest.raises(ForeignListError, match="empty.jsonl: no entity in the file"):
        parse_ftm(path, "empty.jsonl", keep_persons=False)
