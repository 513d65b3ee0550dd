"""Identifier schemes are pack data (`identifiers`), on SQLite and PostgreSQL.

Every pack was read with the Chinese schemes: in a French pack a SIREN (9 digits, Luhn) was taken
for a Chinese organisation code (GB 11714), a valid one refused or "verified" by the wrong check
and warned about as an organisation code; the register never keyed a firm by its SIREN. Here a
French pack (the cn pack with its identifier schemes replaced: SIREN and SIRET through
python-stdnum) ingests real firms' SIRENs and a mistyped one, links a penalty by SIREN, lists the
firm and answers screening by SIREN. The cn pack declares today's Chinese schemes and reads every
code as before.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from stdnum import ean
from stdnum import luhn
from stdnum.fr import siren

from worlds import EFFECTIVE, EVALUATED, NOTICE, resident_id, run, uscc, write_csv
from xinyong.domain.identifiers import classify_code
from xinyong.domain.pack import PACKS_DIR, Pack, PackError, load_pack
from xinyong.services.intake.register import entity_key_for
from xinyong.store import tables as t
from xinyong.store.db import open_engine

DANONE, LOREAL, RENAULT = "552032534", "632012100", "441639465"  # SIRENs of the Registre du commerce
BRIEF = "732829320"  # a valid SIREN as well
MISTYPED = "552032535"  # Danone's with its last digit wrong
FRENCH_IDENTIFIERS = """
identifiers:
  - {scheme: siren, validator: stdnum.fr.siren, primary: true}
  - {scheme: siret, validator: stdnum.fr.siret}
  - {scheme: lei, validator: builtin}
"""
# the pack's register and penalty files under French headers, onto the cn pack's fields
REGISTER_MAPPING = {"Dénomination": "name", "SIREN": "uscc", "Date d'immatriculation": "established"}
PENALTY_MAPPING = {"Dénomination": "subject_name", "SIREN": "uscc", "Numéro de décision": "decision_no",
                   "Date de la décision": "decision_date", "Nature de la sanction": "penalty_type"}


def french_pack(folder: Path, identifiers: str = FRENCH_IDENTIFIERS) -> Path:
    path = folder / "fr-test.yaml"
    path.write_text(f"extends: {PACKS_DIR / 'cn' / 'pack.yaml'}\ncode: fr-test\nversion: '1'\nlanguage: fr\n"
                    f"{identifiers}", encoding="utf-8")
    return path


def mapping(folder: Path, name: str, pairs: dict[str, str]) -> Path:
    path = folder / name
    path.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


def records(url: str, category: str) -> dict[str, tuple]:
    engine = open_engine(url)
    r = t.records.c
    with engine.connect() as c:
        rows = c.execute(select(r.subject_name, r.subject_code, r.subject_scheme, r.subject_code_verified, r.warnings)
                         .where(r.category == category)).all()
    engine.dispose()
    return {name: (code, scheme, bool(verified), warnings) for name, code, scheme, verified, warnings in rows}


def register_french_firms(cli, folder: Path) -> None:
    cli("init", "--pack", french_pack(folder))
    register = write_csv(folder / "registre.csv", ["Dénomination", "SIREN", "Date d'immatriculation"], [
        ["Danone", "552 032 534", "1955-01-01"],
        ["L'Oréal", LOREAL, "1963-01-01"],
        ["Renault", RENAULT, "1955-01-01"],
        ["Société au SIREN cité", BRIEF, "1972-01-01"],
        ["Danone (saisie erronée)", MISTYPED, "1955-01-01"],
    ])
    cli("ingest", register, "--authority", "samr", "--category", "registration",
        "--mapping", mapping(folder, "registre.yaml", REGISTER_MAPPING))


def test_a_french_pack_reads_sirens_with_their_own_check(cli, tmp_path: Path) -> None:
    assert all(siren.is_valid(code) for code in (DANONE, LOREAL, RENAULT, BRIEF)) and not siren.is_valid(MISTYPED)
    register_french_firms(cli, tmp_path)
    found = records(cli.url, "registration")
    for name, code in (("Danone", DANONE), ("L'Oréal", LOREAL), ("Renault", RENAULT),
                       ("Société au SIREN cité", BRIEF)):
        assert found[name][:3] == (code, "siren", True), name
        assert "organisation code" not in json.dumps(found[name][3], ensure_ascii=False)
    code, scheme, verified, warnings = found["Danone (saisie erronée)"]
    assert (code, scheme, verified) == (MISTYPED, "siren", False)
    assert f"siren {MISTYPED} fails its check" in json.dumps(warnings, ensure_ascii=False)
    engine = open_engine(cli.url)
    e, i = t.entities.c, t.entity_identifiers.c
    with engine.connect() as c:
        held = {(scheme, value): (key, bool(entity_verified)) for scheme, value, key, entity_verified in c.execute(
            select(i.scheme, i.value, e.key, e.verified).join(t.entities, e.id == i.entity_id))}
    engine.dispose()
    # the pack's primary scheme keys the register: Danone is entity 552032534, a verified one
    assert held[("siren", DANONE)] == (DANONE, True) and held[("siren", LOREAL)] == (LOREAL, True)
    assert not held[("siren", MISTYPED)][1] and held[("siren", MISTYPED)][0] != MISTYPED
    assert not any(scheme in ("org_code", "uscc", "unknown") for scheme, _ in held)


def test_a_penalty_links_by_siren_and_screening_answers_by_siren(cli, tmp_path: Path) -> None:
    register_french_firms(cli, tmp_path)
    penalties = write_csv(tmp_path / "sanctions.csv", ["Dénomination", "SIREN", "Numéro de décision",
                                                       "Date de la décision", "Nature de la sanction"], [
        ["DANONE SA", DANONE, "DGCCRF-2025-001", "2025-06-03", "吊销许可证"],
    ])
    cli("ingest", penalties, "--authority", "samr", "--category", "penalty",
        "--mapping", mapping(tmp_path, "sanctions.yaml", PENALTY_MAPPING))
    run(cli, "resolve")
    engine = open_engine(cli.url)
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    with engine.connect() as c:
        linked = c.execute(select(e.key, link.method).join(t.record_links, link.record_id == r.id)
                           .join(t.entities, e.id == link.entity_id).where(r.category == "penalty")).all()
    engine.dispose()
    assert [tuple(row) for row in linked] == [(DANONE, "identifier")]
    run(cli, "evaluate", "--as-of", EVALUATED)
    (listing,) = run(cli, "listing", "list", "--entity", DANONE)
    cli("listing", "notify", listing["id"], "--on", NOTICE, "--actor", "agent-dupont", "--reason", "notifiée")
    run(cli, "process", "--as-of", EFFECTIVE)
    as_of = (dt.date.fromisoformat(EFFECTIVE) + dt.timedelta(days=1)).isoformat()
    for written in (DANONE, "552 032 534", "552-032-534"):
        answer = run(cli, "screen", written, "--action", "bidding", "--as-of", as_of)
        assert (answer["decision"], answer["subject"]["key"]) == ("deny", DANONE), written
    clean = run(cli, "screen", LOREAL, "--action", "bidding", "--as-of", as_of)
    assert (clean["decision"], clean["subject"]["key"]) == ("allow", LOREAL)
    refused = cli("screen", "552032536", "--action", "bidding", "--as-of", as_of, ok=False)
    assert refused.exit_code != 0 and "siren 552032536 fails its check" in refused.output
    assert "organisation code" not in refused.output


# -- the schema ----------------------------------------------------------------------------------------------

def test_pack_validate_refuses_a_validator_python_stdnum_does_not_have(cli, tmp_path: Path) -> None:
    typo = french_pack(tmp_path, FRENCH_IDENTIFIERS.replace("stdnum.fr.siren", "stdnum.fr.sirene"))
    refused = cli("pack", "validate", typo, ok=False)
    assert refused.exit_code != 0
    assert "identifiers" in refused.output and "python-stdnum has no module 'stdnum.fr.sirene'" in refused.output
    assert cli("pack", "validate", french_pack(tmp_path)).exit_code == 0


@pytest.mark.parametrize("entry, problem", [
    ("{scheme: siren}", "needs a `validator` or a `pattern`"),
    ("{scheme: siren, validator: fr.siren}", "not a validator"),
    ("{scheme: siren, validator: stdnum.fr}", "not a validator: name a module of it"),
    ("{scheme: siren, validator: builtin}", "`builtin` reads only the schemes"),
    ("{scheme: siren, pattern: '[0-9'}", "is not a regular expression"),
    # a person's number would be shown whole: public surfaces mask only the built-in resident_id
    ("{scheme: nir, validator: stdnum.fr.nir}", "checks natural persons' numbers"),
    ("{scheme: ssn, validator: stdnum.us.ssn}", "checks natural persons' numbers"),
])
def test_the_schema_refuses_an_identifier_scheme_it_cannot_read(tmp_path: Path, entry: str, problem: str) -> None:
    with pytest.raises(PackError, match="identifiers") as refused:
        load_pack(str(french_pack(tmp_path, f"identifiers:\n  - {entry}\n")))
    assert problem in str(refused.value)


def test_two_primary_schemes_or_one_scheme_twice_are_refused(tmp_path: Path) -> None:
    both = FRENCH_IDENTIFIERS.replace("stdnum.fr.siret}", "stdnum.fr.siret, primary: true}")
    with pytest.raises(PackError, match="only one scheme may be `primary`"):
        load_pack(str(french_pack(tmp_path, both)))
    twice = FRENCH_IDENTIFIERS + "  - {scheme: siren, pattern: '[0-9]{9}'}\n"
    with pytest.raises(PackError, match="scheme 'siren' appears twice"):
        load_pack(str(french_pack(tmp_path, twice)))


# -- the cn pack unchanged; other packs' readers -----------------------------------------------------------

CN_SAMPLES = [uscc("91110108551385082"), uscc("91440400192548256"), "91110108551385082Q", "9111O1085513850826",
              resident_id("110101", dt.date(1980, 5, 12), 123), "110101800512123", "11010119800512123X",
              "55138508-2", "551385082", "551385083", "110108000000016", "5493001KJTIIGC8Y1R12",
              DANONE, MISTYPED, "ABC-123", " ", "９１１１０１０８５５１３８５０８２"]


@pytest.mark.parametrize("subject_kind", [None, "enterprise", "natural_person", "individual_business"])
@pytest.mark.parametrize("prefer", ["uscc", "resident_id"])
def test_the_cn_pack_reads_every_code_as_before(prefer: str, subject_kind: str | None) -> None:
    reader = load_pack("cn").code_reader()
    today = dt.date(2026, 1, 1)
    for raw in CN_SAMPLES:
        assert (reader.classify(raw, prefer, subject_kind=subject_kind, today=today)
                == classify_code(raw, prefer, subject_kind=subject_kind, today=today)), raw
    # the same as a pack that declares no identifiers at all: the Chinese schemes are the default
    assert Pack.model_validate({k: v for k, v in load_pack("cn").model_dump(by_alias=True).items()
                                if k != "identifiers"}).code_reader() is reader


def test_a_pattern_narrows_a_validator_to_its_scheme_and_alone_is_the_check(tmp_path: Path) -> None:
    """A New Zealand Business Number is a GS1 GTIN-13 starting 94: `stdnum.ean` checks it, the pattern
    keeps other GTINs out; a company number of the Companies Office is a pattern alone."""
    nzbn = "942904153591" + ean.calc_check_digit("942904153591")
    pack = load_pack(str(french_pack(tmp_path, "identifiers:\n"
                                               "  - {scheme: nzbn, validator: stdnum.ean, pattern: '94[0-9]{11}', primary: true}\n"
                                               "  - {scheme: nz_company, pattern: '[0-9]{6,7}'}\n")))
    reader = pack.code_reader()

    def read(raw: str) -> tuple[str, str, bool]:
        found = reader.classify(raw)
        return found.value, found.scheme, found.verified

    assert read(nzbn) == (nzbn, "nzbn", True)
    broken = reader.classify(nzbn[:-1] + str((int(nzbn[-1]) + 1) % 10))
    assert (broken.scheme, broken.verified, broken.warning) == ("nzbn", False, f"nzbn {broken.value} fails its check")
    assert reader.classify("4006381333931").scheme == "unknown"  # a GTIN of another country: no NZBN
    assert read("1234567") == ("1234567", "nz_company", True)
    assert reader.classify(uscc("91110108551385082")).scheme == "unknown"  # no Chinese scheme in this pack
    assert pack.primary_scheme == "nzbn"


# -- every field of `identifiers` has an effect (tests/test_pack_fields.py) -------------------------------------

def _with_siren(**update: object) -> Pack:
    siren_scheme = {"scheme": "siren", "validator": "stdnum.fr.siren", **update}
    return Pack.model_validate({**load_pack("cn").model_dump(by_alias=True), "identifiers": [siren_scheme]})


@pytest.mark.parametrize("update", [{"scheme": "siren_fr"}, {"validator": "stdnum.fr.siret"}, {"pattern": "9[0-9]{8}"}])
def test_identifier_scheme_decides_what_a_code_is(update: dict[str, str]) -> None:
    before, after = (pack.code_reader().classify(DANONE) for pack in (_with_siren(), _with_siren(**update)))
    assert (before.scheme, before.verified) == ("siren", True)
    assert (after.scheme, after.verified) != (before.scheme, before.verified)


def test_identifier_primary_keys_the_register() -> None:
    cn = load_pack("cn")
    demoted = Pack.model_validate({**cn.model_dump(by_alias=True), "identifiers": [
        {**spec.model_dump(), "primary": False} for spec in cn.identifiers]})
    code = uscc("91110108551385082")
    assert entity_key_for("uscc", code, True, "小米科技有限责任公司", cn.primary_scheme, "salt") == code
    assert entity_key_for("uscc", code, True, "小米科技有限责任公司", demoted.primary_scheme, "salt") != code


def test_a_foreign_designation_keeps_and_matches_a_siren(cli, tmp_path: Path) -> None:
    """An OpenSanctions entity naming a French firm by its SIREN: the code was refused at import as a
    failed organisation code, so screening by SIREN never found the designation."""
    designated = "12345678" + luhn.calc_check_digit("12345678")  # an invented firm's SIREN
    register_french_firms(cli, tmp_path)
    ftm = tmp_path / "designations.ftm.jsonl"
    ftm.write_text(json.dumps({"id": "fr-example-1", "schema": "Company", "properties": {
        "name": ["Exemple Négoce SARL"], "registrationNumber": [designated, "123456780"], "country": ["fr"]},
        "datasets": ["example_sanctions"], "target": True}, ensure_ascii=False) + "\n", encoding="utf-8")
    outcome = run(cli, "lists", "import", ftm, "--format", "ftm", "--list", "os_fr")
    refused = [(item["value"], item["reason"]) for value in outcome.values() if isinstance(value, list)
               for item in value if isinstance(item, dict) and "reason" in item]
    assert refused == [("123456780", "siren 123456780 fails its check")]  # the mistyped one alone
    answer = run(cli, "screen", designated, "--action", "bidding")
    assert answer["decision"] == "refer"
    assert [(d["source_id"], d["explanation"]) for d in answer["foreign_designations"]] == [
        ("fr-example-1", {"identifier": designated})]
