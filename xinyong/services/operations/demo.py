"""Synthetic demo jurisdiction: a market-entity register and record batches with known truth.

`generate(out_dir, entities, seed)` writes

- `registration.xlsx`: the register of market entities (valid USCCs over real GB/T 2260
  county-level codes, former names, branches, legacy registration numbers and organisation codes);
- record batches from several authorities in mixed formats (CSV, XLSX, JSON Lines), encodings
  (GB18030, UTF-8 with and without BOM), header synonyms and date styles, with noise planted at
  known rates (missing, mistyped and legacy codes, name variants, duplicates, malformed rows,
  subjects absent from the register);
- `truth.csv` (`record_key,entity_key`): which entity every acceptable record is about;
- `expected_rejects.csv` (`file,row,reason`): the malformed rows that ingestion must refuse;
- `manifest.json`: the files with their authority, category, format and encoding, and counts.

All randomness comes from one seeded `random.Random`, so a seed always yields the same bytes.
Faker's zh_CN data (surname frequencies, given names, company-name prefixes) feeds name pools;
no Faker call is made per row, which keeps 200,000 entities well under a minute.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any, TypeVar
from xml.sax.saxutils import escape

from faker.providers.company.zh_CN import Provider as _FakerCompany
from faker.providers.person.zh_CN import Provider as _FakerPerson
from stdnum.iso7064 import mod_11_10

from xinyong.domain.identifiers import USCC_ALPHABET, org_code_check_character, uscc_check_character
from xinyong.services.intake.readers import column_letters

# Rates of planted noise, per subject record unless said otherwise.
NOISE = {
    "unregistered": 0.03,  # subject absent from the register
    "missing_code": 0.04,  # name only
    "mistyped_code": 0.03,  # one character changed: the check fails
    "legacy_entity": 0.05,  # share of entities whose later records carry legacy codes...
    "legacy_code": 0.6,  # ...in this share of their records (15-digit 注册号 or 组织机构代码)
    "former_name": 0.2,  # share of records written under a former name, for entities that have one
    "bracket_variant": 0.25,  # share of records with half-width brackets, for bracketed names
    "legal_form_variant": 0.035,  # 有限公司 <-> 有限责任公司
    "name_typo": 0.02,
    "whitespace": 0.03,
    "amount_format": 0.04,  # thousands separators or full-width digits (valid values)
    "duplicate": 0.02,  # share of rows repeated exactly (per file)
    "malformed": 0.03,  # share of rows planted malformed (per file)
}

# --- GB/T 2260 county-level divisions ------------------------------------------------------
# code, province, city, district, and the first year the code was in use as listed in the
# GB/T 2260 history that python-stdnum ships (1949: in use before its records begin). A resident
# ID number is only valid with a region code that existed in its holder's birth year.
_DIVISIONS_TABLE = """
110101 北京市 北京市 东城区 1949
110102 北京市 北京市 西城区 1949
110105 北京市 北京市 朝阳区 1949
110106 北京市 北京市 丰台区 1949
110108 北京市 北京市 海淀区 1949
110112 北京市 北京市 通州区 1997
110114 北京市 北京市 昌平区 1999
110115 北京市 北京市 大兴区 2001
120101 天津市 天津市 和平区 1949
120104 天津市 天津市 南开区 1949
120116 天津市 天津市 滨海新区 2009
130102 河北省 石家庄市 长安区 1983
130104 河北省 石家庄市 桥西区 1983
140105 山西省 太原市 小店区 1997
150102 内蒙古自治区 呼和浩特市 新城区 1983
210102 辽宁省 沈阳市 和平区 1983
210202 辽宁省 大连市 中山区 1983
220102 吉林省 长春市 南关区 1983
230102 黑龙江省 哈尔滨市 道里区 1983
230103 黑龙江省 哈尔滨市 南岗区 1983
310101 上海市 上海市 黄浦区 1949
310104 上海市 上海市 徐汇区 1949
310105 上海市 上海市 长宁区 1949
310106 上海市 上海市 静安区 1949
310107 上海市 上海市 普陀区 1949
310110 上海市 上海市 杨浦区 1949
310112 上海市 上海市 闵行区 1981
310115 上海市 上海市 浦东新区 1992
320102 江苏省 南京市 玄武区 1983
320106 江苏省 南京市 鼓楼区 1983
320213 江苏省 无锡市 梁溪区 2015
320505 江苏省 苏州市 虎丘区 2000
320506 江苏省 苏州市 吴中区 2000
320508 江苏省 苏州市 姑苏区 2012
330102 浙江省 杭州市 上城区 1983
330106 浙江省 杭州市 西湖区 1983
330108 浙江省 杭州市 滨江区 1996
330110 浙江省 杭州市 余杭区 2001
330203 浙江省 宁波市 海曙区 1983
330212 浙江省 宁波市 鄞州区 2002
340104 安徽省 合肥市 蜀山区 1983
340111 安徽省 合肥市 包河区 1983
350102 福建省 福州市 鼓楼区 1983
350203 福建省 厦门市 思明区 1983
350206 福建省 厦门市 湖里区 1987
360102 江西省 南昌市 东湖区 1983
370102 山东省 济南市 历下区 1983
370202 山东省 青岛市 市南区 1983
370212 山东省 青岛市 崂山区 1988
410102 河南省 郑州市 中原区 1983
410105 河南省 郑州市 金水区 1983
420102 湖北省 武汉市 江岸区 1983
420106 湖北省 武汉市 武昌区 1983
420111 湖北省 武汉市 洪山区 1983
430102 湖南省 长沙市 芙蓉区 1983
430104 湖南省 长沙市 岳麓区 1983
440103 广东省 广州市 荔湾区 1983
440104 广东省 广州市 越秀区 1983
440105 广东省 广州市 海珠区 1983
440106 广东省 广州市 天河区 1985
440303 广东省 深圳市 罗湖区 1983
440304 广东省 深圳市 福田区 1983
440305 广东省 深圳市 南山区 1983
440306 广东省 深圳市 宝安区 1992
440307 广东省 深圳市 龙岗区 1992
440604 广东省 佛山市 禅城区 2002
450103 广西壮族自治区 南宁市 青秀区 1983
460106 海南省 海口市 龙华区 2002
500103 重庆市 重庆市 渝中区 1997
500112 重庆市 重庆市 渝北区 1997
510104 四川省 成都市 锦江区 1990
510105 四川省 成都市 青羊区 1990
510107 四川省 成都市 武侯区 1990
510108 四川省 成都市 成华区 1990
520102 贵州省 贵阳市 南明区 1983
530102 云南省 昆明市 五华区 1983
540102 西藏自治区 拉萨市 城关区 1983
610103 陕西省 西安市 碑林区 1983
610113 陕西省 西安市 雁塔区 1983
620102 甘肃省 兰州市 城关区 1983
630102 青海省 西宁市 城东区 1983
640104 宁夏回族自治区 银川市 兴庆区 2002
650102 新疆维吾尔自治区 乌鲁木齐市 天山区 1983
"""

# province -> (one-character abbreviation used in document numbers, short name)
_PROVINCES = {
    "北京市": ("京", "北京"), "天津市": ("津", "天津"), "上海市": ("沪", "上海"), "重庆市": ("渝", "重庆"),
    "河北省": ("冀", "河北"), "山西省": ("晋", "山西"), "内蒙古自治区": ("蒙", "内蒙古"),
    "辽宁省": ("辽", "辽宁"), "吉林省": ("吉", "吉林"), "黑龙江省": ("黑", "黑龙江"),
    "江苏省": ("苏", "江苏"), "浙江省": ("浙", "浙江"), "安徽省": ("皖", "安徽"), "福建省": ("闽", "福建"),
    "江西省": ("赣", "江西"), "山东省": ("鲁", "山东"), "河南省": ("豫", "河南"), "湖北省": ("鄂", "湖北"),
    "湖南省": ("湘", "湖南"), "广东省": ("粤", "广东"), "广西壮族自治区": ("桂", "广西"),
    "海南省": ("琼", "海南"), "四川省": ("川", "四川"), "贵州省": ("黔", "贵州"), "云南省": ("云", "云南"),
    "西藏自治区": ("藏", "西藏"), "陕西省": ("陕", "陕西"), "甘肃省": ("甘", "甘肃"), "青海省": ("青", "青海"),
    "宁夏回族自治区": ("宁", "宁夏"), "新疆维吾尔自治区": ("新", "新疆"),
}


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    province: str
    city: str  # the province itself for the four municipalities
    district: str
    full: str  # 北京市朝阳区, 浙江省杭州市西湖区
    city_short: str  # 北京, 杭州
    district_short: str  # 朝阳, 浦东
    province_short: str  # 北京, 浙江
    abbr: str  # 京, 浙: court case numbers
    doc: str  # 京, 杭: prefix of administrative document numbers
    court: str  # 京0105: court code in case numbers
    since: int  # first year the code was in use


def _division(code: str, province: str, city: str, district: str, since: str) -> Division:
    abbr, province_short = _PROVINCES[province]
    municipality = province == city
    short = district.removesuffix("新区") if district.endswith("新区") else district.removesuffix("区")
    city_short = city.removesuffix("市")
    return Division(
        code=code, province=province, city=city, district=district,
        full=(city if municipality else province + city) + district,
        city_short=city_short, district_short=short, province_short=province_short,
        abbr=abbr, doc=abbr if municipality else city_short[0], court=abbr + code[2:], since=int(since),
    )


DIVISIONS: tuple[Division, ...] = tuple(_division(*line.split()) for line in _DIVISIONS_TABLE.strip().splitlines())
_DIVISION_BY_CODE = {d.code: d for d in DIVISIONS}
_DIVISIONS_SINCE = {year: tuple(d for d in DIVISIONS if d.since <= year) for year in range(1955, 2001)}

# --- name material --------------------------------------------------------------------------
_TRADE_CHARS = "华鑫盛恒泰达源昌宏信德瑞丰祥安嘉博创通汇金中天海新明正诚和优联远捷锦宇腾飞佳益星辰云智睿卓凯东方光力森林清晨悦美润隆兴永富康泽宝荣威"
_TRADE_NAMES = tuple(sorted({a + b for a in _TRADE_CHARS for b in _TRADE_CHARS if a != b}
                            | {p for p in _FakerCompany.company_prefixes if len(p) == 2}))
# industry word in the name -> sector (drives licences and penalty catalogues)
_INDUSTRIES = (
    ("科技", "tech"), ("信息技术", "tech"), ("网络科技", "tech"), ("软件", "tech"), ("教育科技", "tech"),
    ("商贸", "trade"), ("贸易", "trade"), ("实业", "trade"), ("供应链管理", "trade"), ("汽车服务", "trade"),
    ("建筑工程", "construction"), ("建设工程", "construction"), ("装饰工程", "construction"),
    ("餐饮管理", "food"), ("食品", "food"), ("酒店管理", "food"), ("农业发展", "food"),
    ("环保科技", "industry"), ("化工", "industry"), ("机械设备", "industry"), ("电子", "industry"),
    ("新材料", "industry"), ("包装制品", "industry"), ("服饰", "industry"), ("新能源", "industry"),
    ("医药", "health"), ("医疗器械", "health"), ("生物科技", "health"), ("健康管理", "health"),
    ("物流", "service"), ("文化传媒", "service"), ("广告", "service"), ("物业管理", "service"),
    ("房地产开发", "service"), ("人力资源", "service"),
)
_SHOPS = (("便利店", "food"), ("餐馆", "food"), ("小吃店", "food"), ("面馆", "food"), ("水果店", "food"),
          ("烟酒店", "food"), ("超市", "food"), ("五金店", "trade"), ("服装店", "trade"), ("理发店", "service"),
          ("美容店", "service"), ("维修部", "service"), ("茶行", "food"), ("建材经营部", "trade"))
_STREETS = tuple(root + suffix for root in ("建国", "人民", "中山", "解放", "和平", "长安", "科技", "创业", "文化",
                                            "新华", "光明", "幸福", "学院", "工业", "滨江", "青年", "东风", "胜利",
                                            "友谊", "迎宾", "金融", "复兴", "团结", "振兴", "花园", "湖滨", "世纪")
                 for suffix in ("路", "大街", "街", "大道", "东路", "西路", "南路", "北路"))
_TYPOS = {"鑫": "新", "华": "化", "盛": "胜", "泰": "太", "达": "大", "源": "元", "昌": "长", "宏": "洪", "德": "得",
          "瑞": "锐", "丰": "峰", "祥": "翔", "嘉": "佳", "博": "搏", "汇": "会", "通": "同", "恒": "衡", "锦": "金",
          "腾": "藤", "远": "圆", "益": "易", "诚": "城", "智": "志", "润": "闰", "隆": "龙"}
_SURNAMES = tuple(_FakerPerson.last_names)
_SURNAME_CUM = tuple(accumulate(_FakerPerson.last_names.values()))
_GIVEN = {True: tuple(_FakerPerson.first_names_male), False: tuple(_FakerPerson.first_names_female)}
_GIVEN_SINGLE = {k: tuple(g for g in v if len(g) == 1) for k, v in _GIVEN.items()}

# --- catalogues of findings -----------------------------------------------------------------
_SAMR_VIOLATIONS = (
    ("虚假广告", "发布虚假广告，对商品的性能、功能、质量作虚假宣传，欺骗、误导消费者", "《中华人民共和国广告法》第五十五条第一款"),
    ("产品质量", "销售的产品经监督抽查检验不合格，以不合格产品冒充合格产品", "《中华人民共和国产品质量法》第五十条"),
    ("食品安全", "经营超过保质期的食品、食品添加剂", "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项"),
    ("价格违法", "不按规定明码标价，在标价之外加价收取未予标明的费用", "《中华人民共和国价格法》第四十二条"),
    ("不正当竞争", "对商品的性能、销售状况、用户评价作虚假或者引人误解的商业宣传", "《中华人民共和国反不正当竞争法》第二十条第一款"),
    ("商标侵权", "销售侵犯注册商标专用权的商品", "《中华人民共和国商标法》第六十条第二款"),
    ("计量违法", "使用未经检定的计量器具", "《中华人民共和国计量法实施细则》第四十三条"),
    ("特种设备", "使用未经定期检验的特种设备", "《中华人民共和国特种设备安全法》第八十四条第（一）项"),
)
_ENV_VIOLATIONS = (
    ("超过大气污染物排放标准排放大气污染物", "《中华人民共和国大气污染防治法》第九十九条第（二）项"),
    ("建设项目环境影响评价文件未经批准擅自开工建设", "《中华人民共和国环境影响评价法》第三十一条第一款"),
    ("未按照规定设置危险废物识别标志", "《中华人民共和国固体废物污染环境防治法》第一百一十二条第一款第（一）项"),
    ("通过暗管逃避监管的方式排放水污染物", "《中华人民共和国水污染防治法》第八十三条第（三）项"),
    ("未取得排污许可证排放污染物", "《排污许可管理条例》第三十三条第（一）项"),
)
_HEALTH_VIOLATIONS = (
    "未取得《医疗机构执业许可证》擅自执业",
    "使用非卫生技术人员从事医疗卫生技术工作",
    "公共场所卫生质量经检测不符合卫生标准和要求",
    "供水单位供应的饮用水不符合国家卫生标准和卫生规范",
    "未按照规定对医疗废物进行分类收集",
)
_SAFETY_VIOLATIONS = (
    ("未按照规定对从业人员进行安全生产教育和培训", "《中华人民共和国安全生产法》第九十七条第（三）项"),
    ("未在有较大危险因素的生产经营场所设置明显的安全警示标志", "《中华人民共和国安全生产法》第九十九条第（一）项"),
    ("特种作业人员未按照规定经专门的安全作业培训并取得相应资格，上岗作业", "《中华人民共和国安全生产法》第九十七条第（七）项"),
    ("未建立安全风险分级管控和隐患排查治理双重预防工作机制", "《中华人民共和国安全生产法》第一百零一条第（五）项"),
    ("未采取措施消除事故隐患", "《中华人民共和国安全生产法》第一百零二条"),
)
_TAX_CASES = (
    ("偷税", "通过在账簿上多列支出、少列收入的手段，少缴增值税、企业所得税"),
    ("偷税", "进行虚假的纳税申报，少缴应纳税款"),
    ("虚开增值税专用发票", "在没有真实交易的情况下虚开增值税专用发票，造成国家税款损失"),
    ("逃避追缴欠税", "欠缴应纳税款，采取转移或者隐匿财产的手段，妨碍税务机关追缴欠缴的税款"),
    ("骗取出口退税", "以假报出口的欺骗手段骗取国家出口退税款"),
)
_ABNORMAL_REASONS = (
    "未依照《企业信息公示暂行条例》第八条规定的期限公示年度报告",
    "通过登记的住所或者经营场所无法联系",
    "公示企业信息隐瞒真实情况、弄虚作假",
    "未在市场监督管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息",
)
_COURT_GROUNDS = (
    "有履行能力而拒不履行生效法律文书确定义务",
    "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "违反财产报告制度",
    "违反限制消费令",
    "无正当理由拒不履行执行和解协议",
)
# sector -> licences: (certificate, number style, content)
_LICENCES = {
    "food": (("食品经营许可证", "JY", "预包装食品（含冷藏冷冻食品）销售；热食类食品制售"),
             ("食品生产许可证", "SC", "糕点；速冻食品")),
    "health": (("药品经营许可证", "YP", "中成药、化学药制剂、抗生素制剂、生物制品"),
               ("第三类医疗器械经营许可证", "QX", "III类医疗器械批发")),
    "industry": (("工业产品生产许可证", "XK", "危险化学品包装物、容器"),
                 ("特种设备生产许可证", "TS", "压力管道元件制造")),
    "other": (("食品经营许可证", "JY", "预包装食品（不含冷藏冷冻食品）销售"),),
}

_START = date(2019, 1, 1)
_END = date(2025, 6, 30)
_IMPOSSIBLE = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))


def _date_text(d: date, style: str) -> str:
    return _ymd_text(d.year, d.month, d.day, style)


def _ymd_text(year: int, month: int, day: int, style: str) -> str:
    """A date as an authority writes it; also takes days that do not exist (2023-02-30)."""
    if style == "slash":
        return f"{year}/{month}/{day}"
    if style == "cn":
        return f"{year}年{month}月{day}日"
    if style == "compact":
        return f"{year:04d}{month:02d}{day:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _add_years(d: date, years: int) -> date:
    return d.replace(year=d.year + years, day=28 if (d.month, d.day) == (2, 29) else d.day)


_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def _resident_id_check(body17: str) -> str:
    total = sum(int(c) * w for c, w in zip(body17, _RIC_WEIGHTS))
    return "10X98765432"[total % 11]


# --- model ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Person:
    name: str
    id_no: str


@dataclass(slots=True, eq=False)
class Entity:
    uscc: str
    name: str
    prefix: str  # 91, 92, 52, 12, N2, Y1
    entity_type: str
    sector: str
    division: Division
    legal_rep: Person
    established: date
    former_names: list[str] = field(default_factory=list)
    reg_no: str = ""
    status: str = "存续"
    address: str = ""
    authority: str = ""
    legacy: bool = False  # later records may carry only its legacy codes
    registered: bool = True
    head: Entity | None = None  # set for branches

    @property
    def org_code(self) -> str:
        return self.uscc[8:17]

    @property
    def entity_key(self) -> str:
        """What truth.csv says a record about this subject resolves to: empty when unregistered."""
        return self.uscc if self.registered else ""


@dataclass(frozen=True, slots=True)
class Batch:
    file: str
    authority: str
    category: str
    format: str  # csv | xlsx | jsonl
    encoding: str | None
    columns: tuple[tuple[str, str], ...]  # (our field, header written in the file)
    dates: str  # iso | slash | cn | compact | cell
    key: str  # field holding the natural key
    date: str  # field planted with impossible dates
    amount: str | None = None  # field planted with invalid amounts
    name: str = "subject_name"
    code: str = "uscc"


@dataclass(slots=True)
class Row:
    values: dict[str, Any]
    key: str  # natural key as written (without the authority)
    entity_key: str
    reject: str = ""


BATCHES = (
    Batch("samr_penalties.csv", "samr", "penalty", "csv", "gb18030", (
        ("subject_name", "行政相对人名称"), ("uscc", "统一社会信用代码"), ("legal_representative", "法定代表人"),
        ("decision_no", "行政处罚决定书文号"), ("violation_type", "违法行为类型"), ("facts", "违法事实"),
        ("legal_basis", "处罚依据"), ("penalty_type", "处罚类别"), ("penalty_content", "处罚内容"),
        ("fine_amount", "罚款金额（万元）"), ("decision_date", "处罚决定日期"), ("publicity_end", "公示截止期"),
        ("authority_name", "处罚机关")), "slash", "decision_no", "decision_date", "fine_amount"),
    Batch("samr_licences.csv", "samr", "licence", "csv", "utf-8", (
        ("subject_name", "行政相对人名称"), ("uscc", "统一社会信用代码"), ("decision_no", "行政许可决定文书号"),
        ("certificate", "许可证书名称"), ("licence_no", "许可编号"), ("content", "许可内容"),
        ("decision_date", "许可决定日期"), ("valid_from", "有效期自"), ("valid_to", "有效期至"),
        ("authority_name", "许可机关")), "iso", "decision_no", "decision_date"),
    Batch("samr_abnormal_operations.csv", "samr", "abnormal_operation", "csv", "utf-8", (
        ("subject_name", "企业名称"), ("uscc", "统一社会信用代码"), ("decision_no", "列入决定书文号"),
        ("reason", "列入经营异常名录原因"), ("decision_date", "列入日期"), ("authority_name", "作出决定机关")),
        "cn", "decision_no", "decision_date"),
    Batch("tax_violations.csv", "tax", "tax_violation", "csv", "utf-8-sig", (
        ("subject_name", "当事人名称"), ("uscc", "统一社会信用代码"), ("case_no", "案件编号"),
        ("case_nature", "案件性质"), ("facts", "主要违法事实"), ("evaded_amount", "偷税金额"),
        ("decision_date", "处罚决定日期"), ("authority_name", "税务机关")),
        "compact", "case_no", "decision_date", "evaded_amount"),
    Batch("tax_grades.jsonl", "tax", "tax_grade", "jsonl", "utf-8", (
        ("subject_name", "subject_name"), ("uscc", "uscc"), ("year", "year"), ("grade", "grade"),
        ("evaluated_on", "evaluated_on")),
        "iso", "year", "year"),
    Batch("env_penalties.xlsx", "env", "env_violation", "xlsx", None, (
        ("subject_name", "单位名称"), ("uscc", "社会信用代码"), ("decision_no", "决定书文号"), ("facts", "违法事实"),
        ("legal_basis", "处罚依据"), ("penalty_content", "处罚内容"), ("fine_amount", "罚款金额"),
        ("decision_date", "处罚日期"), ("authority_name", "作出决定机关")), "cell", "decision_no", "decision_date",
        "fine_amount"),
    Batch("court_defaulters.csv", "court", "court_defaulter", "csv", "utf-8", (
        ("subject_name", "被执行人姓名/名称"), ("person_id", "身份证号码/组织机构代码"),
        ("legal_representative", "法定代表人或者负责人姓名"), ("court", "执行法院"), ("province", "省份"),
        ("basis_no", "执行依据文号"), ("filing_date", "立案时间"), ("case_no", "案号"),
        ("basis_issuer", "做出执行依据单位"), ("obligation", "生效法律文书确定的义务"),
        ("performance", "被执行人的履行情况"), ("ground", "失信被执行人行为具体情形"), ("published", "发布时间")),
        "cn", "case_no", "published", None, code="person_id"),
    Batch("health_penalties.jsonl", "health", "penalty", "jsonl", "utf-8", (
        ("subject_name", "subject_name"), ("uscc", "uscc"), ("decision_no", "decision_no"),
        ("penalty_type", "penalty_type"), ("facts", "facts"), ("fine_amount", "fine_amount"),
        ("decision_date", "decision_date")), "iso", "decision_no", "decision_date", "fine_amount"),
    Batch("safety_penalties.csv", "safety", "penalty", "csv", "utf-8-sig", (
        ("subject_name", "被处罚单位名称"), ("uscc", "信用代码"), ("decision_no", "处罚决定书文号"),
        ("facts", "主要违法违规事实(案由)"), ("legal_basis", "行政处罚依据"), ("penalty_type", "处罚种类"),
        ("penalty_content", "行政处罚内容"), ("fine_amount", "罚没金额"), ("decision_date", "作出处罚决定的日期"),
        ("authority_name", "作出处罚决定的机关名称")), "compact", "decision_no", "decision_date", "fine_amount"),
    # last, so that the files before it stay what the same seed always gave
    Batch("samr_relations.csv", "samr", "relations", "csv", "utf-8", (
        ("name", "企业名称"), ("uscc", "统一社会信用代码"), ("party_name", "关联方名称"), ("party_kind", "关联方类型"),
        ("party_code", "证照/证件号码"), ("role", "职务"), ("share", "出资比例"), ("as_of", "信息日期")),
        "iso", "party_name", "as_of", name="name"),
)

REGISTRATION_HEADERS = ("统一社会信用代码", "企业名称", "曾用名", "企业类型", "法定代表人", "法定代表人证件号码", "住所",
                        "登记机关", "成立日期", "登记状态", "注册号", "组织机构代码", "所属行政区划")


# --- generator ------------------------------------------------------------------------------
T = TypeVar("T")


class _Random(Random):
    """random.Random with cheaper `choice` and `randint` (scaled `random()`, no rejection loop).

    They are called millions of times for a large demo; the stock versions went through
    `randrange` and dominated the profile.
    """

    def choice(self, seq: Sequence[T]) -> T:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


class _Generator:
    def __init__(self, entities: int, seed: int) -> None:
        self.n = entities
        self.rng = _Random(seed)
        self.noise: Counter[str] = Counter()
        self.subject_records = 0
        self._usccs: set[str] = set()
        self._org_codes: set[str] = set()
        self._reg_nos: set[str] = set()
        self._names: set[str] = set()
        self._person_ids: set[str] = set()
        self._seq: dict[str, int] = {}
        self.serious_tax: set[tuple[str, int]] = set()

    # ---- small helpers
    def day(self, lo: date, hi: date) -> date:
        return lo + timedelta(days=self.rng.randint(0, (hi - lo).days))

    def number(self, prefix: str) -> int:
        """Next number of a document series: increasing, with gaps."""
        n = self._seq.get(prefix, self.rng.randint(0, 30)) + self.rng.randint(1, 4)
        self._seq[prefix] = n
        return n

    def doc_no(self, series: str, year: int) -> str:
        return f"{series}〔{year}〕{self.number(series + str(year))}号"

    def yuan(self, lo: int, hi: int) -> int:
        """A fine or amount in yuan, log-spread between lo and hi, rounded to 100."""
        value = lo * (hi / lo) ** self.rng.random()
        return max(100, int(round(value, -2)))

    def record_date(self, e: Entity) -> date:
        lo = max(e.established + timedelta(days=30), _START)
        return self.day(min(lo, _END - timedelta(days=30)), _END)

    # ---- persons and codes
    def person(self, division: Division | None = None) -> Person:
        rng = self.rng
        male = rng.random() < 0.62
        given = rng.choice(_GIVEN[male])
        if len(given) == 1 and rng.random() < 0.55:
            given += rng.choice(_GIVEN_SINGLE[male])
        name = _SURNAMES[bisect(_SURNAME_CUM, rng.random() * _SURNAME_CUM[-1])] + given
        while True:
            birth = self.day(date(1955, 1, 1), date(2000, 12, 31))
            if division and division.since <= birth.year and rng.random() < 0.7:
                region = division.code
            else:
                region = rng.choice(_DIVISIONS_SINCE[birth.year]).code
            body = f"{region}{birth:%Y%m%d}{rng.randint(0, 499) * 2 + male:03d}"
            id_no = body + _resident_id_check(body)
            if id_no not in self._person_ids:
                self._person_ids.add(id_no)
                return Person(name, id_no)

    def uscc(self, prefix: str, division: Division, established: date) -> str:
        rng = self.rng
        while True:
            if established >= date(2015, 10, 1):
                org8 = "MA" + "".join(rng.choices(USCC_ALPHABET, k=6))
            else:
                org8 = f"{rng.randint(0, 10**8 - 1):08d}"
            org = org8 + org_code_check_character(org8)
            first17 = prefix + division.code + org
            code = first17 + uscc_check_character(first17)
            if org not in self._org_codes and code not in self._usccs:
                self._org_codes.add(org)
                self._usccs.add(code)
                return code

    def reg_no(self, division: Division) -> str:
        while True:
            body = f"{division.code}{self.rng.randint(0, 10**8 - 1):08d}"
            code = body + mod_11_10.calc_check_digit(body)
            if code not in self._reg_nos:
                self._reg_nos.add(code)
                return code

    # ---- names
    def _claim(self, name: str) -> bool:
        """Reserve a name for one entity; False when another already holds it."""
        if name in self._names:
            return False
        self._names.add(name)
        return True

    def _unique(self, make: Callable[[], str]) -> str:
        while not self._claim(name := make()):
            pass
        return name

    def _company_name(self, d: Division, trade: str, industry: str, form: str) -> str:
        style = self.rng.random()
        if style < 0.10:
            return f"{trade}（{d.city_short}）{industry}{form}"
        if style < 0.15:
            return f"{trade}{industry}（{d.city_short}）{form}"
        if style < 0.40:
            return f"{d.city}{trade}{industry}{form}"
        if style < 0.48 and d.province != d.city:
            return f"{d.province_short}{trade}{industry}{form}"
        return f"{d.city_short}{trade}{industry}{form}"

    def address(self, d: Division) -> str:
        rng = self.rng
        tail = "" if rng.random() < 0.4 else f"{rng.randint(1, 12)}号楼{rng.randint(1, 28)}{rng.randint(1, 20):02d}室"
        return f"{d.full}{rng.choice(_STREETS)}{rng.randint(1, 399)}号{tail}"

    # ---- the register
    def entity(self, prefix: str) -> Entity:
        rng = self.rng
        d = rng.choice(DIVISIONS)
        established = self.day(date(1995, 1, 1), date(2024, 12, 31))
        former: list[str] = []
        if prefix in ("91", "92") and rng.random() < NOISE["legacy_entity"]:
            established = self.day(date(1995, 1, 1), date(2014, 12, 31))
            legacy = True
        else:
            legacy = False
        authority = f"{d.city}{d.district}市场监督管理局"
        if prefix == "91":
            industry, sector = rng.choice(_INDUSTRIES)
            r = rng.random()
            form, etype = (("有限公司", "有限责任公司（自然人投资或控股）") if r < 0.65 else
                           ("有限责任公司", "有限责任公司（法人独资）") if r < 0.9 else
                           ("股份有限公司", "股份有限公司（非上市、自然人投资或控股）"))
            while True:
                trade = rng.choice(_TRADE_NAMES)
                name = self._company_name(d, trade, industry, form)
                if self._claim(name):
                    break
            if rng.random() < 0.15:  # renamed: from another industry word, or another trade name
                for _ in range(1 if rng.random() < 0.75 else 2):
                    if rng.random() < 0.5:
                        old = self._company_name(d, trade, rng.choice([i for i, _ in _INDUSTRIES if i != industry]), form)
                    else:
                        old = self._company_name(d, rng.choice(_TRADE_NAMES), industry, form)
                    if self._claim(old):
                        former.append(old)
        elif prefix == "92":
            shop, sector = rng.choice(_SHOPS)
            etype = "个体工商户"
            name = self._unique(lambda: f"{d.city}{d.district}{rng.choice(_TRADE_NAMES)}{shop}")
        elif prefix == "52":
            kind = rng.choice(("培训学校", "养老服务中心", "社会工作服务中心", "幼儿园", "康复中心"))
            etype, sector, authority = "民办非企业单位", "health" if kind == "康复中心" else "service", f"{d.city}{d.district}民政局"
            name = self._unique(lambda: f"{d.city}{d.district}{rng.choice(_TRADE_NAMES)}{kind}")
        elif prefix == "12":
            kind = rng.choice(("社区卫生服务中心", "文化馆", "检验检测中心", "市政设施管理中心", "职业技术学校"))
            etype, sector, authority = "事业单位", "service", f"{d.city}{d.district}机构编制委员会办公室"
            name = self._unique(lambda: f"{d.city}{d.district}{rng.choice(_STREETS)}{kind}")
        elif prefix == "N2":
            etype, sector, authority = "村级集体经济组织", "food", f"{d.city}{d.district}农业农村局"
            name = self._unique(lambda: f"{d.city}{d.district}{rng.choice(_TRADE_NAMES)}村股份经济合作社")
        else:  # Y1
            etype, sector, authority = "其他组织", "service", f"{d.city}{d.district}工商业联合会"
            name = self._unique(lambda: f"{d.city}{d.district}{rng.choice(_TRADE_NAMES)}商会")
        e = Entity(
            uscc=self.uscc(prefix, d, established), name=name, prefix=prefix, entity_type=etype, sector=sector,
            division=d, legal_rep=self.person(d), established=established, former_names=former,
            reg_no=self.reg_no(d) if prefix in ("91", "92") else "", address=self.address(d),
            authority=authority, legacy=legacy,
        )
        r = rng.random()
        e.status = "存续" if r < 0.80 else "在业" if r < 0.88 else "吊销" if r < 0.94 else "注销" if r < 0.99 else "迁出"
        return e

    def branch(self, head: Entity) -> Entity:
        rng = self.rng
        while True:
            d = rng.choice(DIVISIONS)
            place = d.district_short if d.city == head.division.city else d.city_short
            name = f"{head.name}{place}分公司"
            if name not in self._names:
                self._names.add(name)
                break
        established = self.day(max(head.established, date(2016, 1, 1)), date(2024, 12, 31))
        etype = "股份有限公司分公司" if "股份有限公司" in head.name else "有限责任公司分公司"
        return Entity(
            uscc=self.uscc("91", d, established), name=name, prefix="91", entity_type=etype, sector=head.sector,
            division=d, legal_rep=self.person(d), established=established, reg_no=self.reg_no(d),
            address=self.address(d), authority=f"{d.city}{d.district}市场监督管理局", head=head,
        )

    def register(self) -> list[Entity]:
        rng = self.rng
        branches = round(self.n * 0.03)
        prefixes = rng.choices(("91", "92", "52", "12", "N2", "Y1"), weights=(80.5, 15, 2, 1.5, 0.6, 0.4),
                               k=self.n - branches)
        prefixes[0] = "91"  # at least one company to hang branches on
        out: list[Entity] = []
        for prefix in prefixes:
            e = self.entity(prefix)
            if out and rng.random() < 0.05:  # one person representing several entities
                e.legal_rep = rng.choice(out).legal_rep
            out.append(e)
        companies = [e for e in out if e.prefix == "91"]
        out.extend(self.branch(rng.choice(companies)) for _ in range(branches))
        rng.shuffle(out)
        return out

    def unregistered(self, count: int) -> list[Entity]:
        out = []
        for _ in range(count):
            d = self.rng.choice(DIVISIONS)
            industry, sector = self.rng.choice(_INDUSTRIES)
            established = self.day(date(2005, 1, 1), date(2023, 12, 31))
            while not self._claim(name := self._company_name(d, self.rng.choice(_TRADE_NAMES), industry, "有限公司")):
                pass
            has_code = self.rng.random() < 0.6
            out.append(Entity(
                uscc=self.uscc("91", d, established) if has_code else "", name=name, prefix="91",
                entity_type="", sector=sector, division=d, legal_rep=self.person(d), established=established,
                registered=False,
            ))
        return out

    # ---- how a subject is written in a record (noise planted here)
    def present(self, e: Entity, name_in_key: bool = False) -> tuple[str, str]:
        """(name, code) as an authority writes them; counts the noise it plants."""
        rng, noise = self.rng, self.noise
        self.subject_records += 1
        if not e.registered:
            noise["unregistered"] += 1
            return e.name, e.uscc
        if e.legacy and rng.random() < NOISE["legacy_code"]:
            code = e.reg_no if rng.random() < 0.5 else e.org_code
            noise["legacy_code"] += 1
        else:
            r = rng.random()
            if r < NOISE["missing_code"]:
                code = ""
                noise["missing_code"] += 1
            elif r < NOISE["missing_code"] + NOISE["mistyped_code"]:
                i = rng.randint(8, 16)
                wrong = rng.choice([c for c in USCC_ALPHABET if c != e.uscc[i]])
                code = e.uscc[:i] + wrong + e.uscc[i + 1:]
                noise["mistyped_code"] += 1
            else:
                code = e.uscc
        name = e.name
        if e.former_names and rng.random() < NOISE["former_name"]:
            name = rng.choice(e.former_names)
            noise["former_name"] += 1
        elif "（" in name and rng.random() < NOISE["bracket_variant"]:
            name = name.replace("（", "(").replace("）", ")")
            noise["bracket_variant"] += 1
        elif "股份有限公司" not in name and "有限" in name and rng.random() < NOISE["legal_form_variant"]:
            name = (name.replace("有限责任公司", "有限公司", 1) if "有限责任公司" in name
                    else name.replace("有限公司", "有限责任公司", 1))
            noise["legal_form_variant"] += 1
        elif rng.random() < NOISE["name_typo"]:
            spots = [i for i, c in enumerate(name[:-4]) if c in _TYPOS and i > 0]
            if spots:
                i = rng.choice(spots)
                name = name[:i] + _TYPOS[name[i]] + name[i + 1:]
            else:
                name = name[:2] + name[3:]
            noise["name_typo"] += 1
        if (code or not name_in_key) and rng.random() < NOISE["whitespace"]:
            name = name + " " * rng.randint(1, 3)
            noise["whitespace"] += 1
        return name, code


def _write_csv(path: Path, batch: Batch, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([h for _, h in batch.columns])
    writer.writerows([[row.get(f, "") for f, _ in batch.columns] for row in rows])
    path.write_bytes(buf.getvalue().encode(batch.encoding or "utf-8"))


def _write_jsonl(path: Path, batch: Batch, rows: list[dict[str, Any]]) -> None:
    lines = (json.dumps({h: row.get(f) for f, h in batch.columns}, ensure_ascii=False) for row in rows)
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))


_XLSX_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_XLSX_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XLSX_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XLSX_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_XLSX_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_XLSX_CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_XLSX_CT}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_XLSX_CT}.sharedStrings+xml"/>'
        "</Types>"),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_XLSX_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_XLSX_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_XLSX_REL}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId3" Type="{_XLSX_REL}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{_XLSX_NS}">'
        '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="等线"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"),
}
_EXCEL_EPOCH = date(1899, 12, 30)


def _write_xlsx(path: Path, sheet: str, header: list[str], rows: list[list[Any]]) -> None:
    """A one-sheet workbook: shared strings, dates as real date cells (serial + date format).

    Written directly rather than through openpyxl, whose per-cell serialisation took ~40 s for
    a 200,000-row register here; the result reads back with openpyxl and calamine alike, and
    fixed zip timestamps keep the bytes identical for a given seed.
    """
    strings: dict[str, int] = {}
    letters = [column_letters(i) for i in range(len(header))]
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_XLSX_NS}"><sheetData>']
    for r, row in enumerate([header, *rows], 1):
        cells = []
        for letter, value in zip(letters, row):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                index = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{letter}{r}" t="s"><v>{index}</v></c>')
            elif isinstance(value, date):
                cells.append(f'<c r="{letter}{r}" s="1"><v>{(value - _EXCEL_EPOCH).days}</v></c>')
            else:
                cells.append(f'<c r="{letter}{r}"><v>{value}</v></c>')
        out.append(f'<row r="{r}">{"".join(cells)}</row>')
    out.append("</sheetData></worksheet>")
    shared = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in strings)
    parts = {
        **_XLSX_STATIC,
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_XLSX_NS}" xmlns:r="{_XLSX_REL}"><sheets>'
            f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/worksheets/sheet1.xml": "".join(out),
        "xl/sharedStrings.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<sst xmlns="{_XLSX_NS}" count="{len(strings)}" uniqueCount="{len(strings)}">{shared}</sst>'),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"), compresslevel=1)


# --- record batches -------------------------------------------------------------------------
class _Records:
    """Builds the rows of every batch from the register."""

    def __init__(self, g: _Generator, register: list[Entity]) -> None:
        self.g, self.rng = g, g.rng
        self.register = register
        rng = self.rng
        self.market = [e for e in register if e.prefix in ("91", "92")]
        self.companies = [e for e in register if e.prefix == "91"]
        # a minority of firms collects most of the findings, so lists have someone to hit
        self.risky = set(rng.sample(self.market, max(1, len(self.market) // 12)))
        self.pools = {
            "market": self.market,
            "industrial": [e for e in self.companies if e.sector in ("industry", "construction", "food", "health")],
            "care": [e for e in register if e.sector in ("food", "health", "service")],
            "any": register,
        }
        for pool, members in self.pools.items():
            self.pools[pool] = members or self.companies
        self.risky_of = {pool: [e for e in members if e in self.risky] for pool, members in self.pools.items()}
        self.outsiders = g.unregistered(max(10, len(register) // 40))

    def subject(self, pool: str, risky_share: float = 0.5) -> Entity:
        rng = self.rng
        if rng.random() < NOISE["unregistered"]:
            return rng.choice(self.outsiders)
        risky = self.risky_of[pool]
        if risky and rng.random() < risky_share:
            return rng.choice(risky)
        return rng.choice(self.pools[pool])

    def _count(self, factor: float) -> int:
        return max(5, round(len(self.register) * factor))

    def _fine(self, heavy: bool) -> tuple[str, int | None, str]:
        """(penalty type, fine in yuan or None, content)."""
        rng = self.rng
        if heavy:
            r = rng.random()
            if r < 0.35:
                fine = self.g.yuan(50_000, 500_000)
                return "责令停产停业", fine, f"责令停产停业，并处罚款人民币{fine}元"
            if r < 0.65:
                fine = self.g.yuan(20_000, 300_000)
                return "暂扣或者吊销许可证", fine, f"吊销许可证，并处罚款人民币{fine}元"
            fine = self.g.yuan(1_000_000, 5_000_000)
            return "罚款", fine, f"罚款人民币{fine}元"
        r = rng.random()
        if r < 0.08:
            return "警告", None, "警告"
        fine = self.g.yuan(1_000, 200_000)
        if r < 0.25:
            gain = self.g.yuan(500, 50_000)
            return "没收违法所得", fine, f"没收违法所得{gain}元，罚款人民币{fine}元"
        return "罚款", fine, f"责令改正，罚款人民币{fine}元"

    def _heavy(self, e: Entity) -> bool:
        return self.rng.random() < (0.2 if e in self.risky else 0.04)

    def samr_penalties(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.40)):
            e = self.subject("market")
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            vtype, facts, basis = self.rng.choice(_SAMR_VIOLATIONS)
            ptype, fine, content = self._fine(self._heavy(e))
            no = self.g.doc_no(f"{dv.doc}{dv.district_short[0]}市监罚", d.year)
            years = 3 if ptype in ("责令停产停业", "暂扣或者吊销许可证") else 1
            rows.append(Row({
                "subject_name": name, "uscc": code, "legal_representative": e.legal_rep.name, "decision_no": no,
                "violation_type": vtype, "facts": facts, "legal_basis": basis, "penalty_type": ptype,
                "penalty_content": content,
                "fine_amount": "" if fine is None else f"{fine / 10000:.4f}".rstrip("0").rstrip("."),
                "decision_date": _date_text(d, b.dates),
                "publicity_end": _date_text(_add_years(d, years), b.dates),
                "authority_name": f"{dv.city}{dv.district}市场监督管理局",
            }, no, e.entity_key))
        return rows

    def samr_licences(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.70)):
            e = self.subject("any", risky_share=0.1)
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            cert, style, content = self.rng.choice(_LICENCES.get(e.sector, _LICENCES["other"]))
            no = self.g.doc_no(f"{dv.doc}{dv.district_short[0]}市监许", d.year)
            licence_no = self._licence_no(style, dv, d.year)
            until = _add_years(d, 5) - timedelta(days=1)
            rows.append(Row({
                "subject_name": name, "uscc": code, "decision_no": no, "certificate": cert,
                "licence_no": licence_no, "content": content, "decision_date": _date_text(d, b.dates),
                "valid_from": _date_text(d, b.dates), "valid_to": _date_text(until, b.dates),
                "authority_name": f"{dv.city}{dv.district}市场监督管理局",
            }, no, e.entity_key))
        return rows

    def _licence_no(self, style: str, dv: Division, year: int) -> str:
        rng, seq = self.rng, self.g.number(style + dv.code)
        if style == "JY":
            return f"JY{rng.randint(1, 3)}{dv.code}{seq:06d}{rng.randint(0, 9)}"
        if style == "SC":
            return f"SC{rng.choice(('106', '111', '124'))}{dv.code}{seq:04d}{rng.randint(0, 9)}"
        if style == "YP":
            return f"{dv.abbr}AA{dv.code[2:4]}{seq:05d}"
        if style == "QX":
            return f"{dv.doc}{dv.district_short[0]}药监械经营许{year}{seq:04d}号"
        if style == "XK":
            return f"({dv.abbr})XK{rng.randint(13, 16)}-{rng.randint(1, 30):03d}-{seq:05d}"
        return f"TS{rng.randint(1, 3)}{dv.code[:2]}{seq:04d}-{year + 4}"

    def samr_abnormal(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.25)):
            e = self.subject("market", risky_share=0.4)
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            no = self.g.doc_no(f"{dv.doc}{dv.district_short[0]}市监异", d.year)
            rows.append(Row({
                "subject_name": name, "uscc": code, "decision_no": no, "reason": self.rng.choice(_ABNORMAL_REASONS),
                "decision_date": _date_text(d, b.dates), "authority_name": f"{dv.city}{dv.district}市场监督管理局",
            }, no, e.entity_key))
        return rows

    def tax_violations(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.10)):
            e = self.subject("market", risky_share=0.6)
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            nature, facts = self.rng.choice(_TAX_CASES)
            amount = self.g.yuan(5_000, 5_000_000)
            if amount >= 100_000 and e.registered:
                self.g.serious_tax.add((e.uscc, d.year))
            no = self.g.doc_no(f"{dv.doc}税稽罚", d.year)
            rows.append(Row({
                "subject_name": name, "uscc": code, "case_no": no, "case_nature": nature, "facts": facts,
                "evaded_amount": str(amount), "decision_date": _date_text(d, b.dates),
                "authority_name": f"国家税务总局{dv.city}税务局稽查局",
            }, no, e.entity_key))
        return rows

    def tax_grades(self, b: Batch) -> list[Row]:
        rng = self.rng
        rows, keys = [], set()
        firms = [e for e in self.companies if e.head is None]
        extra = rng.sample(self.outsiders, min(len(self.outsiders), max(1, len(firms) // 30)))
        # the A-grade list of the demo's evaluation date (2026) publishes the grades of 2025
        for year in (2024, 2025):
            for e in (*firms, *extra):
                if rng.random() >= 0.3 or e.established.year >= year:
                    continue
                name, code = self.g.present(e, name_in_key=True)
                key = f"{year}#{code or name}"
                if key in keys:
                    continue
                keys.add(key)
                if (e.uscc, year) in self.g.serious_tax or (e.uscc, year - 1) in self.g.serious_tax:
                    grade = "D"
                else:
                    grade = rng.choices("ABMCD", weights=(30, 50, 10, 7, 3))[0]
                # grades are published each April for the year before
                rows.append(Row({"subject_name": name, "uscc": code or None, "year": year, "grade": grade,
                                 "evaluated_on": f"{year + 1}-04-{rng.randint(1, 25):02d}"},
                                key, e.entity_key))
        rng.shuffle(rows)
        return rows

    def env_penalties(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.20)):
            e = self.subject("industrial", risky_share=0.5)
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            facts, basis = self.rng.choice(_ENV_VIOLATIONS)
            if self._heavy(e):
                fine = self.g.yuan(200_000, 2_000_000)
                content = f"责令停产整治，并处罚款人民币{fine}元"
            else:
                fine = self.g.yuan(10_000, 500_000)
                content = f"责令改正违法行为，处罚款人民币{fine}元"
            no = self.g.doc_no(f"{dv.doc}环{dv.district_short[0]}罚", d.year)
            rows.append(Row({
                "subject_name": name, "uscc": code, "decision_no": no, "facts": facts, "legal_basis": basis,
                "penalty_content": content, "fine_amount": fine, "decision_date": d,
                "authority_name": f"{dv.city}生态环境局{dv.district_short}分局",
            }, no, e.entity_key))
        return rows

    def court_defaulters(self, b: Batch) -> list[Row]:
        rng, g = self.rng, self.g
        rows = []
        for _ in range(self._count(0.30)):
            debtors = []  # (name, code as written, legal representative, entity key)
            if rng.random() < 0.7:
                e = self.subject("market", risky_share=0.6)
                name, code = g.present(e, name_in_key=True)
                debtors.append((name, code, e.legal_rep.name, e.entity_key))
                home = e.division
                if rng.random() < 0.2:  # a second debtor: its legal representative, or another firm
                    if rng.random() < 0.5:
                        debtors.append((e.legal_rep.name, e.legal_rep.id_no, "", ""))
                    else:
                        e2 = self.subject("market", risky_share=0.6)
                        name, code = g.present(e2, name_in_key=True)
                        debtors.append((name, code, e2.legal_rep.name, e2.entity_key))
            else:  # natural persons: legal representatives of register entities, or anyone
                for _ in range(2 if rng.random() < 0.2 else 1):
                    p = rng.choice(self.market).legal_rep if rng.random() < 0.5 else g.person()
                    debtors.append((p.name, p.id_no, "", ""))
                home = _DIVISION_BY_CODE.get(debtors[0][1][:6]) or rng.choice(DIVISIONS)
            dv = home if rng.random() < 0.7 else rng.choice(DIVISIONS)
            court = f"{dv.city}{dv.district}人民法院"
            filed = g.day(_START, _END - timedelta(days=60))
            published = min(filed + timedelta(days=rng.randint(30, 400)), _END)
            case_no = f"({filed.year}){dv.court}执{g.number(dv.court + str(filed.year))}号"
            basis_year = filed.year - rng.randint(0, 1)
            basis_no = f"({basis_year}){dv.court}民初{g.number(dv.court + '民初' + str(basis_year))}号"
            common = {
                "court": court, "province": dv.province_short, "basis_no": basis_no,
                "filing_date": _date_text(filed, b.dates), "case_no": case_no, "basis_issuer": court,
                "obligation": f"于判决生效之日起十日内向申请执行人支付货款{g.yuan(5_000, 3_000_000)}元及利息",
                "performance": "全部未履行" if rng.random() < 0.8 else "部分未履行",
                "ground": rng.choices(_COURT_GROUNDS, weights=(60, 5, 8, 15, 10, 2))[0],
                "published": _date_text(published, b.dates),
            }
            seen = set()
            for name, code, rep, entity_key in debtors:
                key = f"{case_no}#{code or name}"
                if key not in seen:
                    seen.add(key)
                    rows.append(Row({**common, "subject_name": name, "person_id": code,
                                     "legal_representative": rep}, key, entity_key))
        return rows

    def health_penalties(self, b: Batch) -> list[Row]:
        rows = []
        for _ in range(self._count(0.15)):
            e = self.subject("care", risky_share=0.3)
            name, code = self.g.present(e)
            d = self.g.record_date(e)
            dv = e.division
            ptype, fine, _ = self._fine(self._heavy(e))
            no = self.g.doc_no(f"{dv.doc}{dv.district_short[0]}卫罚", d.year)
            rows.append(Row({
                "subject_name": name, "uscc": code or None, "decision_no": no, "penalty_type": ptype,
                "facts": self.rng.choice(_HEALTH_VIOLATIONS), "fine_amount": fine,
                "decision_date": _date_text(d, b.dates),
            }, no, e.entity_key))
        return rows

    def safety_penalties(self, b: Batch) -> list[Row]:
        rng, g = self.rng, self.g
        rows = []
        for _ in range(self._count(0.15)):
            e = self.subject("industrial", risky_share=0.4)
            name, code = g.present(e)
            d = g.record_date(e)
            dv = e.division
            facts, basis = rng.choice(_SAFETY_VIOLATIONS)
            ptype, fine, content = self._fine(self._heavy(e))
            amount = "" if fine is None else str(fine)
            if fine is not None and rng.random() < NOISE["amount_format"]:
                amount = f"{fine:,}" if rng.random() < 0.5 else amount.translate({c: c + 0xFEE0 for c in range(48, 58)})
                g.noise["amount_format"] += 1
            no = g.doc_no(f"{dv.doc}{dv.district_short[0]}应急罚", d.year)
            rows.append(Row({
                "subject_name": name, "uscc": code, "decision_no": no, "facts": facts, "legal_basis": basis,
                "penalty_type": ptype, "penalty_content": content, "fine_amount": amount,
                "decision_date": _date_text(d, b.dates), "authority_name": f"{dv.city}{dv.district}应急管理局",
            }, no, e.entity_key))
        return rows


    def relations(self, b: Batch) -> list[Row]:
        """Shareholders (persons, or register firms by their USCC), the actual controller, the
        manager and key staff of some companies, as the register publishes them; risky firms first,
        so that listed firms have controllers and principals for the measures to reach."""
        rng, g = self.rng, self.g
        rows: list[Row] = []
        done: set[str] = set()  # a firm's set is written once: a second would contradict it in one file
        for _ in range(self._count(0.05)):
            e = self.subject("market", risky_share=0.5)
            if not e.registered or e.prefix != "91" or e.uscc in done:
                continue
            done.add(e.uscc)
            as_of = _date_text(g.day(max(e.established, _START), _END), b.dates)
            people = [e.legal_rep, *(g.person(e.division) for _ in range(rng.randint(1, 3)))]
            parties: list[tuple[str, str, str, str, str]] = []  # name, kind, code, role, share
            holders = rng.randint(1, 3)
            shares = sorted((rng.randint(5, 60) for _ in range(holders)), reverse=True)
            total = sum(shares)
            for i, share in enumerate(shares):
                percent = round(100 * share / total, 2)
                other = rng.choice(self.companies)
                if i > 0 and other is not e and rng.random() < 0.4:
                    parties.append((other.name, "法人股东", other.uscc, "股东", f"{percent}%"))
                else:
                    person = people[i % len(people)]
                    parties.append((person.name, "自然人股东", person.id_no, "股东", f"{percent}%"))
            controller = next((p for p in parties if p[1] == "自然人股东"), None)
            if controller is not None:
                parties.append((controller[0], "", controller[2], "实际控制人", ""))
            manager = rng.choice(people)
            parties.append((manager.name, "", manager.id_no, rng.choice(("经理", "总经理", "执行董事兼总经理")), ""))
            for role in ("董事", "监事"):
                person = rng.choice(people[1:] or people)
                parties.append((person.name, "", person.id_no, role, ""))
            seen = set()
            for name, kind, code, role, share in parties:
                canonical = {"总经理": "经理", "执行董事兼总经理": "经理"}.get(role, role)
                key = f"{name}/{canonical}#{e.uscc}"
                if key in seen:
                    continue
                seen.add(key)
                rows.append(Row({"name": e.name, "uscc": e.uscc, "party_name": name, "party_kind": kind,
                                 "party_code": code, "role": role, "share": share, "as_of": as_of}, key,
                                e.entity_key))
        return rows


_BUILDERS: dict[str, Callable[[_Records, Batch], list[Row]]] = {
    "samr_penalties.csv": _Records.samr_penalties,
    "samr_licences.csv": _Records.samr_licences,
    "samr_abnormal_operations.csv": _Records.samr_abnormal,
    "tax_violations.csv": _Records.tax_violations,
    "tax_grades.jsonl": _Records.tax_grades,
    "env_penalties.xlsx": _Records.env_penalties,
    "court_defaulters.csv": _Records.court_defaulters,
    "health_penalties.jsonl": _Records.health_penalties,
    "safety_penalties.csv": _Records.safety_penalties,
    "samr_relations.csv": _Records.relations,
}


def _plant_malformed(rng: Random, b: Batch, rows: list[Row]) -> Counter[str]:
    """Break a share of the rows in ways ingestion must refuse; returns counts by reason."""
    kinds = ["no_subject"] if b.category == "tax_grade" else ["missing_key", "invalid_date", "no_subject"]
    if b.amount:
        kinds.append("invalid_amount")
    counts: Counter[str] = Counter()
    for row in rng.sample(rows, round(len(rows) * NOISE["malformed"])):
        reason = rng.choice(kinds)
        v = row.values
        if reason == "missing_key":
            v[b.key] = ""
        elif reason == "invalid_date":
            year = rng.choice((2021, 2022, 2023, 2024))
            month, day = rng.choice(_IMPOSSIBLE)
            v[b.date] = _ymd_text(year, month, day, "iso" if b.dates == "cell" else b.dates)
        elif reason == "invalid_amount":
            amount = v.get(b.amount) or 1000
            bad_number = -abs(float(str(amount).replace(",", ""))) if b.format != "csv" else f"-{amount}"
            v[b.amount] = bad_number if rng.random() < 0.5 else rng.choice(("待定", "不详", "N/A", "壹万元"))
        else:
            v[b.name] = None if b.format == "jsonl" else ""
            v[b.code] = None if b.format == "jsonl" else ""
            if "legal_representative" in v:
                v["legal_representative"] = ""
        row.reject = reason
        counts[reason] += 1
    return counts


def _plant_duplicates(rng: Random, rows: list[Row]) -> int:
    valid = [i for i, row in enumerate(rows) if not row.reject]
    picks = sorted(rng.sample(valid, round(len(rows) * NOISE["duplicate"])), reverse=True)
    for i in picks:
        rows.insert(rng.randint(i + 1, len(rows)), Row(dict(rows[i].values), rows[i].key, rows[i].entity_key))
    return len(picks)


def generate(out_dir: Path, entities: int, seed: int) -> dict[str, Any]:
    """Write a synthetic jurisdiction into `out_dir` and return its manifest (also manifest.json)."""
    if entities < 1:
        raise ValueError("the demo needs at least one entity")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = _Generator(entities, seed)
    register = g.register()
    _write_xlsx(out_dir / "registration.xlsx", "登记信息", list(REGISTRATION_HEADERS), [[
        e.uscc, e.name, "；".join(e.former_names), e.entity_type, e.legal_rep.name, e.legal_rep.id_no, e.address,
        e.authority, e.established, e.status, e.reg_no, e.org_code, e.division.code,
    ] for e in register])
    files: list[dict[str, Any]] = [{"file": "registration.xlsx", "authority": "samr", "category": "registration",
                                    "format": "xlsx", "encoding": None, "rows": len(register)}]
    records = _Records(g, register)
    truth: list[tuple[str, str]] = []
    rejects: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    malformed: Counter[str] = Counter()
    duplicates = 0
    for b in BATCHES:
        rows = _BUILDERS[b.file](records, b)
        malformed += _plant_malformed(g.rng, b, rows)
        duplicates += _plant_duplicates(g.rng, rows)
        values = [row.values for row in rows]
        if b.format == "csv":
            _write_csv(out_dir / b.file, b, values)
        elif b.format == "jsonl":
            _write_jsonl(out_dir / b.file, b, values)
        else:
            _write_xlsx(out_dir / b.file, "行政处罚", [h for _, h in b.columns],
                        [[v.get(f, "") for f, _ in b.columns] for v in values])
        first = 1 if b.format == "jsonl" else 2
        for n, row in enumerate(rows, first):
            if row.reject:
                rejects.append((b.file, n, row.reject))
                continue
            key = f"{b.authority}:{row.key}"
            if key not in seen:
                seen.add(key)
                truth.append((key, row.entity_key))
        files.append({"file": b.file, "authority": b.authority, "category": b.category, "format": b.format,
                      "encoding": b.encoding, "rows": len(rows)})

    buf = io.StringIO()
    csv.writer(buf).writerows([("record_key", "entity_key"), *truth])
    (out_dir / "truth.csv").write_bytes(buf.getvalue().encode("utf-8"))
    buf = io.StringIO()
    csv.writer(buf).writerows([("file", "row", "reason"), *rejects])
    (out_dir / "expected_rejects.csv").write_bytes(buf.getvalue().encode("utf-8"))

    foreign = _write_foreign_lists(out_dir, g, register)
    manifest = {
        "seed": seed,
        "entities": entities,
        "files": files,
        "foreign_lists": foreign,
        "truth": "truth.csv",
        "expected_rejects": "expected_rejects.csv",
        "counts": {
            "rows": sum(f["rows"] for f in files[1:]),
            "accepted": len(truth),
            "accepted_without_entity": sum(1 for _, entity_key in truth if not entity_key),
            "duplicates": duplicates,
            "malformed": dict(sorted(malformed.items())),
            "subject_records": g.subject_records,
            "noise": dict(sorted(g.noise.items())),
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


# --- foreign lists for the demo ------------------------------------------------------------------

def _write_foreign_lists(out_dir: Path, g: _Generator, register: list[Entity]) -> list[dict[str, Any]]:
    """Two small foreign lists in the real formats, every name made up: a UN consolidated list
    (XML) naming one registered firm by an alias (its Chinese name) beside an organisation and an
    individual of its own, and an FtM / OpenSanctions file carrying another firm's USCC in
    `taxNumber` and a person. `demo` imports them (`lists import`): under `cn` the persons are
    skipped and both firms are referred when screened."""
    import xml.etree.ElementTree as ET

    import orjson

    firms = [e for e in register if e.prefix == "91" and e.registered and e.head is None]
    by_name, by_code = g.rng.sample(firms, 2) if len(firms) >= 2 else (firms * 2)[:2] or (None, None)
    root = ET.Element("CONSOLIDATED_LIST", dateGenerated="2026-01-15T08:00:00.000Z")
    person = ET.SubElement(ET.SubElement(root, "INDIVIDUALS"), "INDIVIDUAL")
    for tag, text in (("DATAID", "7900100"), ("FIRST_NAME", "DEMO"), ("SECOND_NAME", "INDIVIDUAL"),
                      ("UN_LIST_TYPE", "DPRK"), ("REFERENCE_NUMBER", "KPi.990"), ("LISTED_ON", "2017-08-05")):
        ET.SubElement(person, tag).text = text
    entities = ET.SubElement(root, "ENTITIES")
    for dataid, reference, name, alias in (("7900001", "KPe.991", "DEMO OCEAN SHIPPING TRADING CORPORATION", None),
                                           ("7900002", "QDe.992", "DEMO FRONT COMPANY", by_name.name if by_name else None)):
        entity = ET.SubElement(entities, "ENTITY")
        for tag, text in (("DATAID", dataid), ("FIRST_NAME", name), ("UN_LIST_TYPE", "DPRK"),
                          ("REFERENCE_NUMBER", reference), ("LISTED_ON", "2018-02-23")):
            ET.SubElement(entity, tag).text = text
        if alias:
            ET.SubElement(ET.SubElement(entity, "ENTITY_ALIAS"), "ALIAS_NAME").text = alias
    ET.ElementTree(root).write(out_dir / "foreign_un_consolidated.xml", encoding="utf-8", xml_declaration=True)
    lines = [{"id": "demo-company-1", "schema": "Company", "properties": {
                 "name": ["Demo Holdings Limited"], "taxNumber": [by_code.uscc] if by_code else []},
              "datasets": ["demo_sanctions"], "first_seen": "2024-02-01T00:00:00", "last_change": "2025-11-03T00:00:00"},
             {"id": "demo-person-1", "schema": "Person", "properties": {"name": ["Demo Person"]},
              "datasets": ["demo_sanctions"], "first_seen": "2024-02-01T00:00:00", "last_change": "2025-11-03T00:00:00"}]
    (out_dir / "foreign_opensanctions.ftm.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return [{"file": "foreign_un_consolidated.xml", "format": "un", "list": "un_sc",
             "named_by_alias": by_name.uscc if by_name else None},
            {"file": "foreign_opensanctions.ftm.jsonl", "format": "ftm", "list": "opensanctions",
             "named_by_code": by_code.uscc if by_code else None}]


# --- due process for the demo ----------------------------------------------------------------

DEMO_LISTINGS_PER_LIST = 60  # each step costs a few milliseconds: enough to fill the lists, and quick


def take_through_due_process(engine: Any, pack: Any, evaluated_on: date, today: date,
                             after_listing: int = 0) -> dict[str, int]:
    """Take the demo's proposals through due process as an operator would, so that the portal
    shows lists in force today: reminders for persons who need them, a notice, the objection
    window, then `process`. Most listings become effective; a few are notified two days ago
    (objection window open: the subject portal has something to object to) and the rest stay
    proposed (the console has something to approve): at most `DEMO_LISTINGS_PER_LIST` proposals
    per list go through. Returns the listings per state.

    Every step is the due-process service an operator's command calls; they run in one
    transaction here (a batch of hundreds of steps, one commit and one audit head), which makes
    the demo seconds faster per hundred listings and changes nothing in what is recorded.

    Only proposals numbered above `after_listing` (those this run's evaluation made) are taken:
    a second demo run on the same store leaves the lists as they are."""
    from sqlalchemy import func, select

    from xinyong.store import tables as t

    with engine.begin() as connection:
        _due_process_steps(_OneTransaction(connection), pack, evaluated_on, today, after_listing)
    L = t.listings.c
    with engine.connect() as c:
        counts = dict(c.execute(select(L.state, func.count()).group_by(L.state)).all())
    return dict(sorted(counts.items()))


class _OneTransaction:
    """Stands in for an Engine: every `begin()`/`connect()` is the one open transaction."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.dialect = connection.dialect

    def begin(self) -> Any:
        return _Same(self.connection)

    def connect(self) -> Any:
        return _Same(self.connection)


class _Same:
    def __init__(self, connection: Any):
        self.connection = connection

    def __enter__(self) -> Any:
        return self.connection

    def __exit__(self, *_exc: Any) -> None:
        return None


def _due_process_steps(engine: Any, pack: Any, evaluated_on: date, today: date, after_listing: int) -> None:
    from sqlalchemy import select

    from xinyong.services.lists.due_process import Actor, DueProcessError, notify, process, remind
    from xinyong.store import tables as t

    L, e = t.listings.c, t.entities.c
    with engine.connect() as c:
        proposed = c.execute(select(L.id, L.list_code, e.kind).join(t.entities, e.id == L.entity_id)
                             .where(L.state == "proposed", L.id > after_listing).order_by(L.id)).all()
    clerk = Actor("demo-clerk", "demo: reminder served")
    officer = Actor("demo-officer", "demo: notice served under the list's rule")
    taken: dict[str, int] = {}
    for n, (listing_id, list_code, kind) in enumerate(proposed):
        taken[list_code] = taken.get(list_code, 0) + 1
        if not pack.list_(list_code).due_process.notice_required:
            continue  # a redlist without notice takes effect at `process`
        if n % 10 == 9 or taken[list_code] > DEMO_LISTINGS_PER_LIST:
            continue  # left proposed: waiting for an officer in the console
        late = n % 10 == 8  # notified recently: the objection window is still open today
        start = today - timedelta(days=6) if late else evaluated_on + timedelta(days=1)
        needed = pack.list_(list_code).due_process.reminders_required.get(kind, 0)
        try:
            for k in range(needed):
                remind(engine, pack, listing_id, start + timedelta(days=k), clerk)
            notify(engine, pack, listing_id, start + timedelta(days=max(needed, 1)), officer)
        except DueProcessError:
            continue  # ended before its notice (a fault cured meanwhile): none is served
    process(engine, pack, today, Actor("demo-process", "demo: windows closed"))


# --- the README's tour ---------------------------------------------------------------------

TOUR_FILE = "tour.env"
DEMO_SUBJECT = "demo-subject"  # who files the demo's objection and repair application


def prepare_tour(engine: Any, pack: Any, out_dir: Path, today: date) -> dict[str, str]:
    """What the README's tour needs on the demo store, found or made once: ids of things to act
    on (a batch with quarantined rows, a record in review, a listed firm, a proposed listing, two
    objections and a repair application waiting for a decision, an effective listing open to
    repair, a penalty whose publicity may be repaired, a court listing with a term to extend and
    one to end, a record to revoke) and files to attach. A second run finds what the first made;
    an objection or repair already decided is replaced by a new one on another listing.
    Returns the tour's variables (keys are added by the caller); one the store has nothing for
    (a small demo may have no record in review) is empty."""
    import orjson
    from sqlalchemy import func, select

    from xinyong.domain.calendar import add_months
    from xinyong.domain.records import is_published
    from xinyong.services.lists.due_process import Actor, apply_repair, file_objection, publicity_ended
    from xinyong.store import tables as t

    commitment = out_dir / "promise.txt"
    commitment.write_text("本企业承诺依法诚信经营，已纠正失信行为，并接受社会监督。\n", encoding="utf-8")
    evidence = out_dir / "receipt.pdf"
    evidence.write_bytes(_RECEIPT_PDF)
    L, e, n, r, o, rep = (t.listings.c, t.entities.c, t.entity_names.c, t.records.c, t.objections.c,
                          t.repairs.c)
    repairable = [spec.code for spec in pack.lists if spec.repair.allowed and spec.repair.min_months_served == 0]
    extendable = [spec.code for spec in pack.lists if spec.duration.extension_max_years]
    ends_on_performance = [spec.code for spec in pack.lists
                           if spec.duration.kind == "until_performance" or spec.performed_when]
    penalty = pack.category("penalty")
    with engine.connect() as c:
        def first(query: Any) -> Any:
            return c.execute(query.limit(1)).first()

        firm = first(select(e.id, e.key, n.name).join(t.listings, L.entity_id == e.id).join(t.entity_names, n.entity_id == e.id)
                     .where(L.state == "effective", e.kind == "enterprise", n.current.is_(True)).order_by(L.id, n.id))
        # the listed firm stays listed through the tour: no case below is about it
        others = L.entity_id != (firm.id if firm is not None else -1)
        batch = first(select(t.batches.c.id).order_by(t.batches.c.quarantined.desc(), t.batches.c.id))
        review = first(select(t.record_links.c.record_id).where(t.record_links.c.state == "review")
                       .order_by(t.record_links.c.score.desc(), t.record_links.c.record_id))
        cited = select(t.listing_evidence.c.record_id)  # revoking one of these would change the lists
        record = first(select(r.record_key).where(r.status == "active", r.category == "penalty",
                                                  r.id.not_in(cited)).order_by(r.id))
        objections = [row.id for row in c.execute(
            select(o.id).where(o.state == "open", o.filed_by == DEMO_SUBJECT).order_by(o.id).limit(2))]
        repair = first(select(rep.id).where(rep.state == "pending", rep.accepted_on.is_(None),
                                            rep.applied_by == DEMO_SUBJECT, rep.listing_id.is_not(None))
                       .order_by(rep.id))
        pending_repair = select(rep.listing_id).where(rep.state == "pending", rep.listing_id.is_not(None))
        objected = select(o.listing_id).where(o.listing_id.is_not(None))
        open_to_repair = [row.id for row in c.execute(
            # not a court list's: those listings are the ones to extend and to end
            select(L.id).where(L.state == "effective", L.list_code.in_(repairable), L.id.not_in(pending_repair),
                               L.id.not_in(objected), L.list_code.not_in(extendable + ends_on_performance), others)
            .order_by(L.id).limit(2))]
        # a court listing with a term left to extend by 2 years, and one to end on performance
        to_extend = first(select(L.id).where(L.state == "effective", L.list_code.in_(extendable),
                                             L.effective_to.is_not(None), func.coalesce(L.extended_years, 0) == 0,
                                             L.id.not_in(pending_repair), L.id.not_in(objected), others)
                       .order_by(L.id))
        to_end = first(select(L.id).where(L.state == "effective", L.list_code.in_(ends_on_performance),
                                          L.id.not_in(pending_repair), L.id.not_in(objected), others,
                                          L.id != (to_extend.id if to_extend else -1))
                       .order_by(L.effective_to.is_not(None), L.id))
        notified = [row.id for row in c.execute(
            select(L.id).where(L.state == "notified", L.id.not_in(objected), others).order_by(L.id).limit(2))]
        # a penalty published long enough for a repair of its publicity, with none pending
        ended = publicity_ended(c)
        pending_record = select(rep.record_key).where(rep.state == "pending", rep.record_key.is_not(None))
        served_by = add_months(today, -penalty.repair.min_months_served) if penalty.repair.allowed else None
        record_to_repair = None
        if served_by is not None:
            for row in c.execute(select(r.record_key, r.fields).where(
                    r.status == "active", r.category == "penalty", r.decision_date <= served_by,
                    r.record_key.not_in(pending_record), r.record_key != (record.record_key if record else ""))
                    .order_by(r.id.desc()).limit(200)):
                fields = row.fields if isinstance(row.fields, dict) else orjson.loads(row.fields)
                if row.record_key not in ended and is_published(penalty, fields):
                    record_to_repair = row.record_key
                    break
        proposed = [(row.id, row.list_code, row.subject_kind) for row in c.execute(
            select(L.id, L.list_code, L.subject_kind).where(L.state == "proposed").order_by(L.id.desc()))]
        reminders = dict(c.execute(select(t.reminders.c.listing_id, func.count()).group_by(t.reminders.c.listing_id)).all())
    if review is None and firm is not None:
        review = _review_example(engine, pack, out_dir, firm.key, today)
    # a proposed listing that one reminder readies for notice, whatever its subject's kind
    listing = next((i for i, code, kind in proposed
                    if pack.list_(code).due_process.reminders_required.get(kind, 0) <= reminders.get(i, 0) + 1), None)
    subject = Actor(DEMO_SUBJECT, "demo: the fine was paid in full")
    for notified_id in notified[:2 - len(objections)]:
        objections.append(file_objection(engine, pack, listing_id=notified_id, record_key=None, on=today,
                                         actor=subject)["objection"])
    if repair is None and len(open_to_repair) > 1:
        repair = (apply_repair(engine, pack, open_to_repair.pop(0), commitment, [evidence], today,
                               subject)["repair"],)
    found = {"ENTITY": firm and firm.key, "ENTITY_NAME": firm and firm.name, "BATCH": batch and batch.id,
             "REVIEW": review and review.record_id, "LISTING": listing,
             "OBJECTION": objections[0] if objections else None,
             "OBJECTION2": objections[1] if len(objections) > 1 else None,
             "REPAIR": repair and repair[0], "REPAIR_LISTING": open_to_repair[0] if open_to_repair else None,
             "REPAIR_RECORD": record_to_repair, "EXTEND_LISTING": to_extend and to_extend.id,
             "COURT_LISTING": to_end and to_end.id, "RECORD": record and record.record_key}
    return {"TODAY": today.isoformat(), **{k: "" if v is None else str(v) for k, v in found.items()},
            "COMMITMENT": str(commitment), "EVIDENCE": str(evidence), "SUBJECTS": str(_subjects_file(out_dir, firm.key))}


def _review_example(engine: Any, pack: Any, out_dir: Path, code: str, today: date) -> Any:
    """A record for the tour's `review accept` when the demo left none in review: a penalty that
    quotes one registered firm's valid code under another registered firm's name. Resolution
    sends it to a human ("code belongs to another firm"), showing both firms."""
    from sqlalchemy import select

    from xinyong.services.intake.ingest import ingest_file
    from xinyong.services.resolution.resolve import resolve
    from xinyong.store import tables as t

    e, n = t.entities.c, t.entity_names.c
    with engine.connect() as c:
        other = c.execute(select(n.name).join(t.entities, e.id == n.entity_id)
                          .where(e.kind == "enterprise", e.key != code, n.current.is_(True))
                          .order_by(e.id.desc()).limit(1)).scalar()
    if other is None:
        return None
    path = out_dir / "review_example.csv"
    path.write_text("当事人名称,统一社会信用代码,行政处罚决定书文号,处罚决定日期,处罚类别,罚款金额（万元）\n"
                    f"{other},{code},演示市监罚〔{today.year}〕1号,{today.isoformat()},罚款,1\n", encoding="utf-8")
    ingest_file(engine, pack, path, "samr", "penalty", actor="demo")
    resolve(engine, pack, actor="demo")
    with engine.connect() as c:
        return c.execute(select(t.record_links.c.record_id).where(t.record_links.c.state == "review")
                         .order_by(t.record_links.c.record_id).limit(1)).first()


def _subjects_file(out_dir: Path, listed: str) -> Path:
    """A screening batch for `screen --batch`: a listed firm, a code nobody holds, a name."""
    path = out_dir / "subjects.csv"
    path.write_text("identifier,name,action\n"
                    f"{listed},,public_procurement\n"
                    "91110000MA00000000,,bidding\n"
                    ",某某不存在的贸易有限公司,public_procurement\n", encoding="utf-8")
    return path


def write_tour(out_dir: Path, variables: dict[str, str]) -> Path:
    """`demo/tour.env`: the tour's variables, for `set -a; . demo/tour.env; set +a` in a shell."""
    import shlex

    path = out_dir / TOUR_FILE
    path.write_text("# written by `xinyong demo`: ids, files and keys the README's tour uses\n"
                    + "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items()),
                    encoding="utf-8")
    return path


# A one-page PDF ("payment receipt"): the evidence the tour attaches to a repair application.
_RECEIPT_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
                b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 100]/Contents 4 0 R"
                b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
                b"4 0 obj<</Length 44>>stream\nBT /F1 12 Tf 20 50 Td (Payment receipt) Tj ET\nendstream endobj\n"
                b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
