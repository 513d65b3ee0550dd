"""Report benchmark: how long a three-page credit report PDF takes, and why the font decides.

    python bench/report.py [--runs N] [--noto FILE] [--keep]

Set-up (not timed): a SQLite store in a temporary folder, built through the CLI as an operator
would (`init`, `ingest` of a register row and N penalty decisions for one firm, `resolve`,
`evaluate`, `listing notify`, `process`), so the firm has an effective listing and N public
penalties with facts, legal basis, content and fines. N is found by rendering (the largest
N whose Chinese report is three pages) on a first store, then a second store is built with
exactly N; the script asserts that its report has 3 pages.

Timed, each warm (one untimed call first), `--runs` times, median and max:

  (a) xinyong      `issue_report(engine, pack, firm, "zh", as_of)`: public file read, template,
                   WeasyPrint with our GB2312 subset font, SHA-256, insert (sealed into the audit chain later, at a checkpoint).
  (a') render      `render_pdf(html)` alone on the same report's HTML: what the font affects.
  (b) full font    the same HTML with the full WenQuanYi Micro Hei (5 MB, 34,600 characters,
                   `fonts-wqy-microhei`) as its only CJK font: what relying on a system font costs.
                   Skipped when that font is not installed.
  (c) Noto CJK     the same HTML with the full Noto Sans CJK SC (16 MB, 65,535 glyphs) as its
                   font, when `--noto` names NotoSansCJK-Regular.ttc or an .otf, or Debian's
                   fonts-noto-cjk is installed. Slow (~30 s a report): 2 runs at most.
  (d) floor        the same HTML with every non-ASCII character replaced by a Latin letter, set
                   in DejaVu Sans alone: the layout and PDF work with no CJK font at all.
  (e) fontTools    (a'), (b) and (c) again with WeasyPrint's other font subsetter: without
                   HarfBuzz's (Debian's libharfbuzz-subset0) it subsets every embedded font with
                   fontTools, whose time grows with the font's glyph count. This is where the
                   font decides. 3, 1 and 1 runs.
  cold             `warm_up()` in a fresh interpreter: fontconfig and the fonts loaded once per
                   process (a server does it at start).

Prints a table and the target ("a three-page report renders in under one second", on the
median of (a), with the subsetter this machine has) with PASS/FAIL, and writes
bench/out/report.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from xinyong.cli import app
from xinyong.domain.identifiers import uscc_check_character
from xinyong.domain.pack import load_pack
from xinyong.services.publication import report as R
from xinyong.services.resolution.entities import public_file
from xinyong.store.db import open_engine

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "report.json"

TARGET_SECONDS = 1.0
TARGET_PAGES = 3
AS_OF = dt.date(2025, 10, 20)
EVALUATED, NOTICE = dt.date(2025, 9, 15), dt.date(2025, 9, 22)
CALIBRATION_RECORDS = 30
WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
NOTO_DEBIAN = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

FIRM_BODY = "91310115MA1BN0007"
FIRM = FIRM_BODY + uscc_check_character(FIRM_BODY)
FIRM_NAME = "上海浦东新区鑫源恒通食品贸易有限公司"

VIOLATIONS = ["销售不符合食品安全标准的食品", "发布虚假广告，欺骗、误导消费者", "未经许可从事食品经营活动",
              "使用未经检验的特种设备", "价格违法行为，在标价之外加价出售商品", "侵犯注册商标专用权",
              "未按规定公示年度报告且隐瞒真实情况、弄虚作假", "生产经营超过保质期的食品原料"]
BASES = ["《中华人民共和国食品安全法》第一百二十四条第一款", "《中华人民共和国广告法》第五十五条第一款",
         "《中华人民共和国行政许可法》第八十一条", "《中华人民共和国特种设备安全法》第八十四条",
         "《中华人民共和国价格法》第四十条", "《中华人民共和国商标法》第六十条第二款",
         "《企业信息公示暂行条例》第十八条", "《中华人民共和国食品安全法》第一百二十三条"]
CONTENTS = ["没收违法所得{m}元，并处罚款", "责令改正，并处罚款", "警告，并处罚款", "没收违法生产经营的食品，并处罚款"]
PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据",
                   "处罚类别", "处罚内容", "罚款金额（万元）", "处罚决定日期", "处罚机关"]


def say(text: str) -> None:
    print(text, flush=True)


# -- the store ---------------------------------------------------------------------------------

def cli(url: str) -> Callable[..., str]:
    runner = CliRunner()

    def run(*args: Any) -> str:
        result = runner.invoke(app, ["--db", url, *map(str, args)])
        if result.exit_code != 0:
            raise SystemExit(f"xinyong {' '.join(map(str, args))} exited {result.exit_code}:\n{result.output}"
                             f"\n{result.exception!r}")
        return result.stdout
    return run


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def penalty_rows(count: int) -> list[list[Any]]:
    """One licence revocation (which puts the firm on the serious-dishonesty list) and fines."""
    rng = random.Random(20251020)
    rows = [[FIRM_NAME, FIRM, "沪市监罚〔2025〕1号", "无证经营", "当事人在许可证被依法撤销后继续从事食品经营活动",
             "《中华人民共和国食品安全法》第一百二十六条", "吊销许可证", "吊销食品经营许可证", "", "2025-06-03",
             "上海市市场监督管理局"]]
    for i in range(2, count + 1):
        k = rng.randrange(len(VIOLATIONS))
        day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(150))
        rows.append([FIRM_NAME, FIRM, f"沪浦市监罚〔2025〕{100 + i}号", "食品安全",
                     f"经查，当事人{VIOLATIONS[k]}，货值金额{rng.randrange(2, 90)}千元，违法事实清楚，证据确凿",
                     BASES[k], "罚款", rng.choice(CONTENTS).format(m=rng.randrange(500, 9000)),
                     f"{rng.randrange(1, 60) / 2:.1f}", day.isoformat(), "上海市浦东新区市场监督管理局"])
    return rows


def build_store(folder: Path, penalties: int) -> str:
    """A store where FIRM has `penalties` public penalties and an effective listing on AS_OF."""
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'store.db'}"
    run = cli(url)
    run("init", "--pack", "cn")
    headers = ["统一社会信用代码", "企业名称", "企业类型", "法定代表人", "住所", "成立日期", "登记状态"]
    firm = [FIRM, FIRM_NAME, "有限责任公司", "王某某", "上海市浦东新区张江路100号", "2012-04-16", "存续"]
    register = write_csv(folder / "register.csv", headers, [firm])
    run("ingest", register, "--authority", "samr", "--category", "registration")
    run("ingest", write_csv(folder / "penalties.csv", PENALTY_HEADERS, penalty_rows(penalties)),
        "--authority", "samr", "--category", "penalty")
    run("resolve")
    run("evaluate", "--as-of", EVALUATED)
    listings = json.loads(run("listing", "list", "--entity", FIRM, "--json"))
    for listing in listings:
        run("listing", "notify", listing["id"], "--on", NOTICE, "--actor", "bench", "--reason", "served")
    run("process", "--as-of", AS_OF)
    return url


def report_html(engine: Any, pack: Any, records: int | None = None) -> str:
    file = public_file(engine, pack, FIRM, AS_OF)
    if records is not None:
        penalties = [r for r in file["records"] if r["category"] == "penalty"]
        keep = {id(r) for r in penalties[:records]}
        file["records"] = [r for r in file["records"] if r["category"] != "penalty" or id(r) in keep]
    issued = dt.datetime(2025, 10, 20, 9, 30, tzinfo=dt.timezone.utc)
    return R.render_html(R.report_context(pack, file, "zh", AS_OF, R.new_code(), issued))


def calibrate(engine: Any, pack: Any) -> int:
    """The largest number of penalties whose report is TARGET_PAGES pages (binary search by rendering)."""
    def pages(records: int) -> int:
        return R.render_pdf(report_html(engine, pack, records))[1]

    low, high = 1, CALIBRATION_RECORDS
    if pages(high) <= TARGET_PAGES:
        raise SystemExit(f"{CALIBRATION_RECORDS} penalties make no more than {TARGET_PAGES} pages: raise it")
    while high - low > 1:  # pages(low) <= TARGET_PAGES < pages(high); pages grow with records
        middle = (low + high) // 2
        if pages(middle) <= TARGET_PAGES:
            low = middle
        else:
            high = middle
    return low


# -- timing -------------------------------------------------------------------------------------

def timed(label: str, call: Callable[[], tuple[bytes, int]], runs: int, warm_up: bool = True) -> dict[str, Any]:
    """`runs` timed calls after one untimed call (fonts loaded, caches filled) unless already warm."""
    first = None
    if warm_up:
        started = time.perf_counter()
        call()
        first = time.perf_counter() - started
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        pdf, pages = call()
        seconds.append(time.perf_counter() - started)
    result = {"label": label, "runs": runs, "median_s": statistics.median(seconds), "max_s": max(seconds),
              "min_s": min(seconds), "first_s": first, "pages": pages, "pdf_bytes": len(pdf), "seconds": seconds}
    say(f"  {label:<44} median {result['median_s']:.3f} s, max {result['max_s']:.3f} s "
        f"({runs} runs, {pages} pages, {len(pdf) / 1024:.0f} KiB)")
    return result


def latin_only(html: str) -> str:
    """Every non-ASCII character of the body replaced by a Latin letter: the same layout work, no CJK."""
    head, body = html.split("<body>", 1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return head + "<body>" + re.sub(r"[^\x00-\x7f]", lambda m: letters[ord(m.group()) % 26], body)


def noto_face(path: Path, folder: Path) -> Path:
    """The Simplified Chinese face of a Noto Sans CJK collection as a standalone OTF (untimed)."""
    if path.suffix.lower() != ".ttc":
        return path
    from fontTools.ttLib import TTCollection

    for font in TTCollection(str(path)).fonts:
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            out = folder / "NotoSansCJKsc-Regular.otf"
            font.save(out)
            return out
    raise SystemExit(f"{path}: no Noto Sans CJK SC face")


def cold_start() -> float:
    """Seconds of `warm_up()` in a fresh interpreter, imports excluded."""
    code = ("import time; from xinyong.services import report as R; t = time.perf_counter(); R.warm_up(); "
            "print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed repetitions of each run (default 7)")
    parser.add_argument("--noto", type=Path, help="NotoSansCJK-Regular.ttc or NotoSansCJKsc-Regular.otf for run (c)")
    parser.add_argument("--keep", action="store_true", help="keep the stores and the PDFs")
    args = parser.parse_args()
    load_before = os.getloadavg()
    pack = load_pack("cn")
    workdir = Path(tempfile.mkdtemp(prefix="xinyong-bench-report-"))
    runs: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        say(f"set-up: calibration store with {CALIBRATION_RECORDS} penalties ...")
        engine = open_engine(build_store(workdir / "calibration", CALIBRATION_RECORDS))
        penalties = calibrate(engine, pack)
        engine.dispose()
        say(f"set-up: {penalties} penalties make a {TARGET_PAGES}-page report; building that store ...")
        engine = open_engine(build_store(workdir / "bench", penalties))
        setup_seconds = time.perf_counter() - started
        say(f"set-up done in {setup_seconds:.1f} s (not counted)")

        html = report_html(engine, pack)
        first = R.issue_report(engine, pack, FIRM, "zh", AS_OF)
        assert first.pages == TARGET_PAGES, f"the report has {first.pages} pages, not {TARGET_PAGES}"
        verified = R.verify_report(engine, first.code, first.pdf)
        assert verified["known"] and verified["unaltered"], verified
        if args.keep:
            (workdir / "report-zh.pdf").write_bytes(first.pdf)

        say(f"timing, {args.runs} warm runs each:")
        def issue(language: str) -> Callable[[], tuple[bytes, int]]:
            def call() -> tuple[bytes, int]:
                issued = R.issue_report(engine, pack, FIRM, language, AS_OF)
                return issued.pdf, issued.pages
            return call

        runs["a"] = timed("(a) xinyong issue_report, zh", issue("zh"), args.runs)
        runs["a_en"] = timed("    the same in en", issue("en"), args.runs)
        runs["a_render"] = timed("(a') render_pdf alone (subset font)", lambda: R.render_pdf(html), args.runs)
        if WQY.exists():
            wqy = R.ReportFonts((("Bench WQY", 400, WQY),), ("Bench WQY",))
            runs["b"] = timed("(b) full WenQuanYi Micro Hei (5 MB)", lambda: R.render_pdf(html, wqy), args.runs)
        else:
            say(f"  (b) skipped: {WQY} not installed (apt-get install fonts-wqy-microhei)")
        noto = args.noto or (NOTO_DEBIAN if NOTO_DEBIAN.exists() else None)
        if noto:
            face = noto_face(noto, workdir)
            fonts = R.ReportFonts((("Bench Noto", 400, face),), ("Bench Noto",))
            runs["c"] = timed(f"(c) full Noto Sans CJK SC ({face.stat().st_size / 1e6:.0f} MB)",
                              lambda: R.render_pdf(html, fonts), min(args.runs, 2))
        else:
            say("  (c) skipped: no Noto Sans CJK (--noto FILE, or apt-get install fonts-noto-cjk)")
        if R.harfbuzz_subset_available():
            from weasyprint.pdf import fonts as pdf_fonts

            saved, pdf_fonts.harfbuzz_subset = pdf_fonts.harfbuzz_subset, None
            logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its warning about this, once per font
            try:
                say("  (e) with fontTools subsetting instead of HarfBuzz:")
                # the font sets were loaded by the runs above: no warm-up call needed
                runs["e_subset"] = timed("(e) fontTools: our subset", lambda: R.render_pdf(html), min(args.runs, 3),
                                         warm_up=False)
                if "b" in runs:
                    runs["e_wqy"] = timed("(e) fontTools: full WenQuanYi", lambda: R.render_pdf(html, wqy), 1,
                                          warm_up=False)
                if noto:
                    runs["e_noto"] = timed("(e) fontTools: full Noto Sans CJK SC", lambda: R.render_pdf(html, fonts),
                                           1, warm_up=False)
            finally:
                pdf_fonts.harfbuzz_subset = saved
                logging.getLogger("weasyprint").setLevel(logging.NOTSET)
        else:
            say("  (e) skipped: this machine has no HarfBuzz subsetter, so every run above already uses fontTools")
        cold = cold_start()
        floor_fonts = R.ReportFonts((("Bench DejaVu", 400, DEJAVU),), ("Bench DejaVu",)) if DEJAVU.exists() \
            else R.ReportFonts((), ("sans-serif",))
        floor_html = latin_only(html)
        runs["d"] = timed("(d) floor: Latin text, DejaVu Sans only", lambda: R.render_pdf(floor_html, floor_fonts),
                          args.runs)
        engine.dispose()
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    a, render, floor = runs["a"], runs["a_render"], runs["d"]
    say("")
    say(f"report benchmark: one firm, {penalties} public penalties + an effective listing, zh, {a['pages']} pages; "
        f"WeasyPrint {_version('weasyprint')}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    versus = "vs (a')"
    say(f"{'run':<46}{'median s':>10}{'max s':>9}{'pages':>7}{'PDF KiB':>9}{versus:>10}")
    for key in ("a", "a_en", "a_render", "b", "c", "d", "e_subset", "e_wqy", "e_noto"):
        if key in runs:
            run = runs[key]
            say(f"{run['label']:<46}{run['median_s']:>10.3f}{run['max_s']:>9.3f}{run['pages']:>7}"
                f"{run['pdf_bytes'] / 1024:>9.0f}{run['median_s'] / render['median_s']:>9.1f}x")
    say(f"{'cold: warm_up() in a fresh process':<46}{cold:>10.3f}")
    say(f"subsetter: {'HarfBuzz' if R.harfbuzz_subset_available() else 'fontTools (no libharfbuzz-subset0)'}; "
        f"fallback fonts: {', '.join(str(p) for p in R.fallback_files()) or 'none'}")
    say("")
    ratios = {k: runs[k]["median_s"] / render["median_s"] for k in ("b", "c", "e_subset") if k in runs}
    ratios["render_over_floor"] = render["median_s"] / floor["median_s"]
    if "e_noto" in runs:
        ratios["e_noto_over_e_subset"] = runs["e_noto"]["median_s"] / runs["e_subset"]["median_s"]
    for key, label in (("b", "full system font (b) / our subset (a')"), ("c", "full Noto CJK (c) / our subset (a')"),
                       ("e_subset", "fontTools (e) / HarfBuzz (a'), our subset"),
                       ("e_noto_over_e_subset", "fontTools: full Noto / our subset")):
        if key in ratios:
            say(f"{label:<46}{ratios[key]:>9.1f}x")
    floor_label = "our subset (a') / Latin floor (d)"
    say(f"{floor_label:<46}{ratios['render_over_floor']:>9.1f}x")
    passed = {"three_pages_under_1s": a["median_s"] < TARGET_SECONDS and a["pages"] == TARGET_PAGES}
    say(f"{'a three-page report renders in':<46}{a['median_s']:>9.3f} s median ({a['max_s']:.3f} s max)   "
        f"target < {TARGET_SECONDS:.1f} s  {_verdict(passed['three_pages_under_1s'])}")
    if "e_subset" in runs:
        passed["three_pages_under_1s_with_fonttools"] = runs["e_subset"]["median_s"] < TARGET_SECONDS
        say(f"{'  the same without libharfbuzz-subset0':<46}{runs['e_subset']['median_s']:>9.3f} s median"
            f"{'':<20}target < {TARGET_SECONDS:.1f} s  {_verdict(passed['three_pages_under_1s_with_fonttools'])}")

    report = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "penalties": penalties, "pages": a["pages"], "setup_seconds": round(setup_seconds, 1),
        "cold_warm_up_s": cold, "harfbuzz_subset": R.harfbuzz_subset_available(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "weasyprint": _version("weasyprint"), "load_before": load_before, "load_after": load_after},
        "fonts": {"subset": [str(p) for _, p in R.PRIMARY_FACES], "fallbacks": [str(p) for p in R.fallback_files()]},
        "runs": runs, "ratios": ratios,
        "targets": {"three_pages_seconds": TARGET_SECONDS}, "passed": passed,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    say(f"\nwritten {OUT.relative_to(ROOT.parent)}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main())
