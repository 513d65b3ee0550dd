"""Cut the report font down to the GB2312 set (plus Latin for en/fr), once, in advance.

    python tools/make_font_subset.py                      # from Debian's fonts-noto-cjk
    python tools/make_font_subset.py --source FILE.ttc    # from a Noto Sans CJK file you have

Why: WeasyPrint subsets every font it embeds, per report. A full Noto Sans CJK face
(65,535 glyphs, 16-27 MB) made a three-page report take ~30 s; the same face cut down
in advance to ~7,700 glyphs renders it in well under a second (bench/report.py).

Source: Noto Sans CJK SC (face "Noto Sans CJK SC" of NotoSansCJK-{Regular,Bold}.ttc),
SIL Open Font License 1.1. Without --source the script fetches Debian's `fonts-noto-cjk`
package with `apt-get download` into a temporary folder and unpacks it there (nothing is
installed on the system, so fontconfig's fallback is not changed by this).

Output: xinyong/fonts/XinyongSansSC-{Regular,Bold}.otf. The subset is a Modified Version
under the OFL, so it carries its own family name ("Xinyong Sans SC"), keeps the original
copyright and licence fields, and ships with xinyong/fonts/OFL.txt.

Characters kept:
- every character of GB2312 (6,763 hanzi + 682 symbols: full-width punctuation, 〔〕《》...);
- hanzi outside GB2312 that are common in company and person names (EXTRA_HANZI);
- every non-ASCII character of the shipped packs and the report's template and labels,
  so the report's own text never needs the fallback font;
- ASCII, Latin-1, Latin Extended-A (French: é è à ç œ « »...), general punctuation,
  currency and letter-like symbols, arrows, CJK symbols and full-width forms.
Characters outside the subset fall back to a system CJK font (see xinyong/fonts/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "xinyong" / "fonts"
FAMILY = "Xinyong Sans SC"
PS_FAMILY = "XinyongSansSC"
SOURCE_FACE = "Noto Sans CJK SC"
DEBIAN_PACKAGE = "fonts-noto-cjk"
DEBIAN_PATH = "usr/share/fonts/opentype/noto/NotoSansCJK-{weight}.ttc"
WEIGHTS = ("Regular", "Bold")

# Common in names of firms and people, and not in GB2312 (those that are are dropped by set union).
EXTRA_HANZI = (
    "堃喆珺昇彧玥祎瑄翀犇骉垚赟璟禤琬婧棽镕昶甦旻暐烜煜熠珏琰璐瑭湉滢沄浛洺凇晔珩琛曌弢頔祐禛锜镠"
    "〇玘玹珅珣琇琍琤瑀瑢瑨璇璠璿瓅昱晞晗晧暻曦炅炘焜焯烨熤燊燚鍪铖锟锴鑫钲钺铄锘镛霈霖雯靓韬頫"
    "瀚澍沣泠洹浠淏溆滈潆濠濬灏芃芮茜荟莘菁萱蓁蔚蘅骞骅驿鹍鹏鹭鹮麒麟琮琯璞璘瑷瓒皓睿翊翎翾"
    "劼勍卓喦坤垲埕堉塬墉奕妍姝娅婕媛嫣孜宥宬宸尧岚峣崧嵘嵩彦徕忞恺悦惇慜懋戬昀昉昺晁晏晷"
)
RANGES = [
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1 supplement
    (0x0100, 0x017F),  # Latin Extended-A (œ, Œ, ...)
    (0x02C6, 0x02DD),  # spacing modifiers
    (0x2000, 0x206F),  # general punctuation (— – ‘ ’ “ ” … ‰ ‹ ›, thin spaces)
    (0x20A0, 0x20BF),  # currency (€, ¥ is in Latin-1)
    (0x2100, 0x214F),  # letter-like (№, ℃, ™)
    (0x2150, 0x218F),  # number forms (Ⅰ Ⅱ ...)
    (0x2190, 0x21FF),  # arrows
    (0x2460, 0x24FF),  # enclosed numbers ① ...
    (0x25A0, 0x25FF),  # geometric shapes (■ □ ● ○ ▲)
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。〈〉《》「」『』【】〔〕)
    (0x3200, 0x32FF),  # enclosed CJK (㈠ ㈱)
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF01, 0xFF65),  # full-width forms
    (0xFFE0, 0xFFEE),  # full-width signs (￥ ￡)
]
DROPPED_FEATURES = {"locl", "vert", "vrt2", "vhal", "vkrn", "vpal", "valt", "vchw", "vjmo"}
OWN_TEXT = ["xinyong/packs/**/*.yaml", "xinyong/templates/report/*", "xinyong/services/publication/report.py"]


def gb2312() -> set[str]:
    chars = set()
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        try:
            ch.encode("gb2312")
        except UnicodeEncodeError:
            continue
        chars.add(ch)
    return chars


def own_text() -> set[str]:
    chars: set[str] = set()
    for pattern in OWN_TEXT:
        for path in ROOT.glob(pattern):
            if path.is_file():
                chars |= {c for c in path.read_text(encoding="utf-8", errors="ignore") if ord(c) >= 0x80}
    return chars


def wanted_characters() -> set[str]:
    chars = gb2312() | set(EXTRA_HANZI) | own_text()
    for first, last in RANGES:
        chars |= {chr(cp) for cp in range(first, last + 1)}
    return {c for c in chars if c.isprintable() or c in "\u00a0\u3000"}


def load_face(path: Path) -> TTFont:
    """The Simplified Chinese face of a collection, or the font itself."""
    if path.suffix.lower() == ".ttc":
        for font in TTCollection(path, lazy=False).fonts:
            if font["name"].getDebugName(1) == SOURCE_FACE:
                return font
        raise SystemExit(f"{path}: no face named {SOURCE_FACE!r}")
    return TTFont(path)


def rename(font: TTFont, weight: str) -> None:
    """Give the Modified Version its own name (OFL §3); keep copyright, licence and designer fields."""
    name = font["name"]
    full = f"{FAMILY} {weight}" if weight != "Regular" else FAMILY
    ps = f"{PS_FAMILY}-{weight}"
    values = {1: FAMILY if weight in ("Regular", "Bold") else full, 2: weight, 3: f"{ps};subset-gb2312",
              4: full, 6: ps, 16: FAMILY, 17: weight}
    for record in list(name.names):
        if record.nameID in values or record.nameID in (7, 11, 12, 21, 22, 25):
            name.removeNames(nameID=record.nameID)
    for name_id, value in values.items():
        name.setName(value, name_id, 3, 1, 0x409)
        name.setName(value, name_id, 1, 0, 0)
    name.setName(f"Subset of Noto Sans CJK SC {weight} (SIL OFL 1.1) to the GB2312 set plus Latin, "
                 f"made by tools/make_font_subset.py", 10, 3, 1, 0x409)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [ps]
        top = cff.topDictIndex[0]
        for key, value in (("FullName", full), ("FamilyName", FAMILY)):
            if hasattr(top, key):
                setattr(top, key, value)


def make_subset(source: Path, weight: str, chars: set[str], out: Path) -> tuple[int, int]:
    font = load_face(source)
    options = subset.Options()
    # fontTools' default features (kerning, ligatures, marks...) but neither the vertical ones nor
    # `locl` (the Japanese, Korean and traditional forms of the same characters): with them the
    # subset holds twice the glyphs. Reports are horizontal, and their Chinese is simplified.
    options.layout_features = [f for f in options.layout_features if f not in DROPPED_FEATURES]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False  # hints do nothing in a PDF viewer's rasteriser worth their bytes
    options.drop_tables += ["VORG", "vhea", "vmtx"]  # no vertical writing in reports
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in chars])
    subsetter.subset(font)
    rename(font, weight)
    font.recalcTimestamp = False  # the same source gives the same bytes: a re-run shows no diff
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(out)
    cmap = font.getBestCmap()
    return len(font.getGlyphOrder()), len(cmap)


def fetch_debian(folder: Path) -> Path:
    folder.chmod(0o755)  # apt-get download runs as the _apt user where it can
    subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=folder, check=True)
    deb = next(folder.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "x")], check=True)
    return folder / "x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, action="append",
                        help="NotoSansCJK-Regular.ttc (and -Bold.ttc) or NotoSansCJKsc-*.otf; "
                             "default: fetched from Debian's fonts-noto-cjk")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    chars = wanted_characters()
    with tempfile.TemporaryDirectory(prefix="xinyong-font-") as tmp:
        if args.source:
            sources = {}
            for path in args.source:
                weight = "Bold" if "bold" in path.name.lower() else "Regular"
                sources[weight] = path
        else:
            if not shutil.which("apt-get"):
                sys.exit("no --source given and no apt-get to fetch fonts-noto-cjk")
            unpacked = fetch_debian(Path(tmp))
            sources = {w: unpacked / DEBIAN_PATH.format(weight=w) for w in WEIGHTS}
        for weight, source in sorted(sources.items()):
            out = args.out / f"{PS_FAMILY}-{weight}.otf"
            glyphs, mapped = make_subset(source, weight, chars, out)
            print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: "
                  f"{out.stat().st_size / 1e6:.2f} MB, {glyphs:,} glyphs, {mapped:,} characters "
                  f"(asked for {len(chars):,}) from {source.name}")


if __name__ == "__main__":
    main()
