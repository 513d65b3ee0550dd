"""Probe: a listing that ended must never come back from the same facts.

An authority re-sends the same decision (same decision number, same fields) in a file that carries
one more column the pack does not know (a remark). Nothing about the facts changed, yet the row
becomes a new record version, and the next evaluation proposes the repaired firm again.
"""

from __future__ import annotations

from test_due_rules import (TAX_HEADERS, ingest, listings, make_effective, register, run, show, uscc,
                            write_csv)

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
    from test_due_rules import PENALTY_HEADERS

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

    # the same cumulative file again: unchanged, nothing comes back (this holds)
    cli("ingest", write_csv(tmp_path / "july.csv", PENALTY_HEADERS, [row]), "--authority", "samr", "--category",
        "penalty")
    assert run(cli, "evaluate", "--as-of", "2025-11-10")["proposals"] == 0
    # the same file with a remark column: the annulled penalty is active again and lists the firm again
    ingest(cli, write_csv(tmp_path / "august.csv", [*PENALTY_HEADERS, "备注"], [[*row, "累计公示"]]),
           "samr", "penalty", 1)
    assert run(cli, "evaluate", "--as-of", "2025-11-20")["proposals"] == 0, \
        f"the revoked penalty listed the firm again: {listings(cli, firm)}"


def test_a_court_listing_ended_by_performance_is_not_proposed_again_from_the_record_that_shows_it(cli, tmp_path):
    """The court's later version of its record says 全部履行: `process` ends the listing (performed).
    The next `evaluate` proposes the same debtor again, citing that very version: the court rule
    has no test on performance, and `spent` (services/lists/evaluate.py) holds record ids, so the
    version that ended the listing is not spent."""
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
