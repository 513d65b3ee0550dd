"""A listing that ended never comes back from the same facts.

Only the pack's fields decide whether a row is a new version of its record: the same decision
re-sent in a file with one more column the pack does not know (a remark) is unchanged, so a repaired
listing is not proposed again and a revoked penalty stays revoked; a re-sent row with other content
for a revoked record is refused (`revoked_record`) and kept in quarantine. A court record's later version
showing the debt paid ends the listing and never proposes the debtor again. A property test re-sends
the same pack fields with any unknown columns holding any values: no version is made.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from test_due_rules import (PENALTY_HEADERS, TAX_HEADERS, ingest, listings, make_effective, register, run, show,
                            uscc, write_csv)

FIRM = uscc("91440300MA5FK7T01")
NAME = "深圳市华强联创电子有限公司"
ROW = ["深税稽〔2025〕77号", NAME, FIRM, "偷税", "2000000", "8000000", "", "", "2025-05-06"]


def test_a_repaired_listing_does_not_come_back_when_the_same_decision_is_resent_with_a_remark(cli, tmp_path):
    register(cli, tmp_path, [(FIRM, NAME)])
    ingest(cli, write_csv(tmp_path / "tax.csv", TAX_HEADERS, [ROW]), "tax", "tax_violation", 1)
    run(cli, "evaluate", "--as-of", "2025-06-02")
    (listing,) = listings(cli, FIRM, "major_tax_violations")
    make_effective(cli, listing["id"], "2025-06-03")
    commitment = tmp_path / "commitment.txt"
    commitment.write_text("本企业承诺依法纳税。", encoding="utf-8")
    proof = tmp_path / "paid.txt"
    proof.write_text("税款、滞纳金、罚款已缴清。", encoding="utf-8")
    repair = run(cli, "repair", "apply", listing["id"], "--commitment", commitment, "--evidence", proof,
                 "--on", "2025-07-01", "--reason", "paid in full")["repair"]
    run(cli, "repair", "decide", repair, "--approve", "--on", "2025-07-03", "--reason", "payment verified")
    assert show(cli, listing["id"])["state"] == "repaired"

    # the monthly re-send of the tax bureau's file: the same case, plus a remark column
    ingest(cli, write_csv(tmp_path / "tax-resent.csv", [*TAX_HEADERS, "备注"], [[*ROW, "月度汇总"]]),
           "tax", "tax_violation", 1)
    assert run(cli, "evaluate", "--as-of", "2025-07-10")["proposals"] == 0
    assert len(listings(cli, FIRM)) == 1


def test_a_revoked_penalty_stays_revoked_when_the_monthly_file_is_resent_with_a_remark(cli, tmp_path):
    firm, name = uscc("91330106MA27XK001"), "杭州西湖数源软件有限公司"
    register(cli, tmp_path, [(firm, name)])
    row = [name, firm, "杭市监罚〔2025〕88号", "2025-06-03", "吊销许可证", ""]
    ingest(cli, write_csv(tmp_path / "june.csv", PENALTY_HEADERS, [row]), "samr", "penalty", 1)
    run(cli, "evaluate", "--as-of", "2025-09-15")
    (listing,) = listings(cli, firm, "serious_dishonesty")
    make_effective(cli, listing["id"], "2025-09-16")
    revoked = run(cli, "record", "revoke", "samr:杭市监罚〔2025〕88号", "--on", "2025-11-02", "--actor", "samr",
                  "--reason", "annulled on appeal")
    assert revoked["listings_withdrawn"] == [listing["id"]]

    # the same cumulative file again: unchanged, nothing comes back
    cli("ingest", write_csv(tmp_path / "july.csv", PENALTY_HEADERS, [row]), "--authority", "samr", "--category",
        "penalty")
    assert run(cli, "evaluate", "--as-of", "2025-11-10")["proposals"] == 0
    # the same file with a remark (the penalty's `remarks` field): the same decision, refused, still revoked
    resent = run(cli, "ingest", write_csv(tmp_path / "august.csv", [*PENALTY_HEADERS, "备注"], [[*row, "累计公示"]]),
                 "--authority", "samr", "--category", "penalty")
    assert (resent["accepted"], resent["quarantined"]) == (0, 1)
    assert run(cli, "evaluate", "--as-of", "2025-11-20")["proposals"] == 0, \
        f"the revoked penalty listed the firm again: {listings(cli, firm)}"


def test_a_court_listing_ended_by_performance_is_not_proposed_again_from_the_record_that_shows_it(cli, tmp_path):
    """The court's later version of its record says 全部履行: `process` ends the listing (performed),
    and the next `evaluate` proposes nothing: a record meeting the list's `performed_when` never
    qualifies, and no version of a record an ended listing cited serves again."""
    from test_due_rules import COURT_HEADERS, GROUND_1

    firm, name = uscc("91440300MA5FQ3001"), "深圳市华联置业发展有限公司"
    register(cli, tmp_path, [(firm, name)])
    case = ["(2025)粤0304执77号", name, firm, "深圳市福田区人民法院"]
    ingest(cli, write_csv(tmp_path / "c1.csv", COURT_HEADERS, [[*case, "全部未履行", GROUND_1, "2025-08-01"]]),
           "court", "court_defaulter", 1)
    run(cli, "evaluate", "--as-of", "2025-09-15")
    (listing,) = listings(cli, firm, "court_defaulters")
    make_effective(cli, listing["id"], "2025-09-16")

    ingest(cli, write_csv(tmp_path / "c2.csv", COURT_HEADERS, [[*case, "全部履行", GROUND_1, "2025-08-01"]]),
           "court", "court_defaulter", 1)
    assert run(cli, "process")["performed"] == 1  # as of today: the court's new version has arrived
    assert show(cli, listing["id"])["state"] == "repaired"
    again = run(cli, "evaluate")
    assert again["proposals"] == 0, f"the debtor who performed is proposed again: {listings(cli, firm)}"


def test_a_revoked_penalty_stays_revoked_when_the_authority_resends_the_content_an_officer_corrected(cli, tmp_path):
    """The officer corrected the penalty, then it was annulled; the authority's cumulative file still
    carries the uncorrected row: content that a revocation ended does not come back."""
    import json

    firm, name = uscc("91330106MA27XK003"), "杭州西湖数源网络有限公司"
    register(cli, tmp_path, [(firm, name)])
    row = [name, firm, "杭市监罚〔2025〕89号", "2025-06-03", "吊销许可证", ""]
    ingest(cli, write_csv(tmp_path / "june.csv", PENALTY_HEADERS, [row]), "samr", "penalty", 1)
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"penalty_type": "吊销许可证；罚款", "fine_amount": 20000}), encoding="utf-8")
    run(cli, "record", "correct", "samr:杭市监罚〔2025〕89号", "--file", fix, "--on", "2025-06-10",
        "--reason", "fine omitted")
    run(cli, "record", "revoke", "samr:杭市监罚〔2025〕89号", "--on", "2025-06-20", "--actor", "samr",
        "--reason", "annulled on appeal")
    # (备注 is the penalty category's `remarks` field: a column the pack does not know is used here)
    ingest(cli, write_csv(tmp_path / "july.csv", [*PENALTY_HEADERS, "汇总批次"], [[*row, "2025-07"]]),
           "samr", "penalty", 1)
    assert run(cli, "evaluate", "--as-of", "2025-09-15")["proposals"] == 0
    assert listings(cli, firm) == []


# header names that neither a pack synonym nor the reader's choice of delimiter (first line) can take
UNKNOWN_HEADER = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=",\t;|\u2028\u2029"),
                         min_size=1, max_size=8).map(lambda text: f"附注{text}")
# any value a clerk may type or paste: quotes, backslashes, spaces, line breaks (all but NUL)
ANY_VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


def test_resending_the_same_pack_fields_with_any_unknown_columns_makes_no_version(cli, tmp_path):
    from xinyong.domain.pack import load_pack
    from xinyong.domain.records import map_columns
    from xinyong.services.intake.ingest import ingest_file
    from xinyong.store import tables as t
    from xinyong.store.db import open_engine

    pack = load_pack("cn")
    category = pack.category("penalty")
    firm, name = uscc("91330106MA27XK002"), "杭州西湖数源科技有限公司"
    rows = [[name, firm, "杭市监罚〔2025〕91号", "2025-06-03", "吊销许可证", ""],
            [name, firm, "杭市监罚〔2025〕92号", "2025-06-04", "罚款", "5000.5"]]
    ingest(cli, write_csv(tmp_path / "first.csv", PENALTY_HEADERS, rows), "samr", "penalty", 2)
    base = map_columns(pack, category, PENALTY_HEADERS).field_of
    engine = open_engine(cli.url)
    sent = iter(range(10**6))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(UNKNOWN_HEADER, ANY_VALUE, ANY_VALUE), min_size=1, max_size=4,
                    unique_by=lambda column: column[0].strip().casefold()))
    def resent(columns: list[tuple[str, str, str]]) -> None:
        headers = [*PENALTY_HEADERS, *(header for header, _, _ in columns)]
        mapping = map_columns(pack, category, headers)
        assume(mapping.field_of == base and len(mapping.extras) == len(columns))
        path = write_csv(tmp_path / f"resent-{next(sent)}.csv", headers,
                         [[*row, *(values[i] for _, *values in columns)] for i, row in enumerate(rows)])
        result = ingest_file(engine, pack, path, "samr", "penalty")
        assert (result.new_versions, result.quarantined) == (0, 0), result
        with engine.connect() as c:
            assert c.execute(select(func.count()).select_from(t.records)).scalar() == 2

    try:
        resent()
    finally:
        engine.dispose()


def test_a_revoked_penalty_is_not_restored_by_a_resent_row_with_other_content(cli, tmp_path):
    """A re-send whose remark (the penalty's `remarks` field) changed is other content, yet the
    same decision: it is refused with its reason, kept in quarantine, and the firm stays unlisted."""
    from sqlalchemy import create_engine

    from xinyong.store import tables as t

    firm, name = uscc("91330106MA27XK005"), "杭州西湖数源信息有限公司"
    register(cli, tmp_path, [(firm, name)])
    row = [name, firm, "杭市监罚〔2025〕90号", "2025-06-03", "吊销许可证", ""]
    ingest(cli, write_csv(tmp_path / "june.csv", PENALTY_HEADERS, [row]), "samr", "penalty", 1)
    run(cli, "record", "revoke", "samr:杭市监罚〔2025〕90号", "--on", "2025-06-20", "--actor", "samr",
        "--reason", "annulled on appeal")
    result = run(cli, "ingest", write_csv(tmp_path / "july.csv", [*PENALTY_HEADERS, "备注"], [[*row, "复议后重新公示"]]),
                 "--authority", "samr", "--category", "penalty")
    assert (result["accepted"], result["quarantined"]) == (0, 1)
    engine = create_engine(cli.url)
    try:
        with engine.connect() as c:
            codes = c.execute(select(t.quarantine.c.reason_code)).scalars().all()
            statuses = c.execute(select(t.records.c.status).where(
                t.records.c.record_key == "samr:杭市监罚〔2025〕90号").order_by(t.records.c.version)).scalars().all()
    finally:
        engine.dispose()
    assert codes == ["revoked_record"] and statuses == ["active", "revoked"]  # no version after the revocation
    assert run(cli, "evaluate", "--as-of", "2025-09-15")["proposals"] == 0
    assert listings(cli, firm) == []
