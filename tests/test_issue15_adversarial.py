"""Adversarial inputs against issue 15's surfaces (open data, webhooks, relations, foreign lists):
what the demo never sends, each a defect found and fixed."""

from __future__ import annotations

import pytest

from xinyong.services.lists.foreign import ForeignListError, parse_un

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
