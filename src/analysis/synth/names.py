"""Fake but well-formed personal data: Chinese names, 身份证号, 统一社会信用代码, mobiles, account numbers.

Every character used is in GBK (customers.csv is written in GBK). Check digits follow
GB 11643-1999 (ID numbers), GB 11714-1997 (organisation code inside the USCC) and
GB 32100-2015 (USCC); account numbers end in a Luhn digit.
"""

from __future__ import annotations

import numpy as np

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
                "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝"
                "龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌辉红玉兰飞鹏宇浩然涵欣怡轩晨阳"
             "思雨佳琪俊志海燕春梅晓东丹婷雪凤林波鑫宏亮玲云龙峰琳颖慧婧淑珍德福永祥庆金荣发成利胜"
             "清新兴旺昌盛泽彬嘉瑞宁安康乐")
TRADE_NAMES = ["鑫源", "恒达", "宏发", "顺发", "金诚", "永兴", "福满", "瑞丰", "隆昌", "盛世", "嘉禾",
               "天成", "华联", "兴旺", "鼎盛", "汇通", "信达", "佳美", "富康", "安顺", "同心", "百汇",
               "万家", "聚源", "新华", "东方", "明珠", "众诚", "红星", "德润", "和泰", "祥瑞", "锦程",
               "凯达", "博远", "昌盛", "泰和", "启航", "合力", "振兴", "宏远", "诚信", "利民", "吉祥",
               "正大", "金鹏", "兴隆", "旺达", "润丰", "中天", "银河"]
SHOP_WORDS = {
    "F": ["五金店", "建材经营部", "副食店", "服装店", "日用品商行", "水果店", "烟酒店", "家电商行",
          "批发部", "农资店", "粮油店"],
    "C": ["加工厂", "制衣厂", "机械加工部", "印刷厂", "木器厂", "食品加工坊"],
    "H": ["餐馆", "小吃店", "面馆", "火锅店", "宾馆", "饭店", "快餐店"],
    "E": ["装修工程部", "建筑工程队", "水电安装部"],
    "G": ["货运部", "运输队", "物流服务部"],
    "L": ["商务咨询服务部", "租赁站", "广告设计部"],
    "A": ["养殖场", "种植园", "家庭农场", "苗木场"],
    "O": ["维修部", "理发店", "美容店", "洗车行", "家政服务部"],
    "*": ["经营部", "服务部", "商行"],
}
FIRM_WORDS = {
    "F": ["商贸", "贸易", "供应链管理", "电子商务", "百货"],
    "C": ["机械制造", "塑料制品", "纺织", "食品", "电子科技", "新材料", "汽车配件"],
    "H": ["餐饮管理", "酒店管理"],
    "E": ["建设工程", "建筑安装", "装饰工程"],
    "G": ["物流", "运输", "仓储"],
    "L": ["企业管理咨询", "设备租赁", "人力资源"],
    "A": ["农业发展", "生态农业", "水产养殖"],
    "M": ["信息技术", "检测技术"],
    "I": ["网络科技", "软件"],
    "*": ["实业", "科技", "服务"],
}
FIRM_SUFFIX = ["有限公司", "有限公司", "有限公司", "有限责任公司"]
MOBILE_PREFIXES = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156,
                            157, 158, 159, 180, 181, 182, 183, 185, 186, 187, 188, 189])

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative ints, most significant first: shape (n, width)."""
    v = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (v[:, None] // powers) % 10


def _zfill(values: np.ndarray, width: int) -> np.ndarray:
    if not np.size(values):
        return np.zeros(0, dtype=f"<U{width}")
    return np.strings.zfill(np.asarray(values, dtype=np.int64).astype(np.str_), width)


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Surname + one or two given-name characters."""
    s = np.asarray(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    g1 = np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)]
    g2 = np.where(rng.random(n) < 0.7, np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    return np.strings.add(np.strings.add(s, g1), g2)


def _pick(rng: np.random.Generator, lists: dict[str, list[str]], sections: np.ndarray) -> np.ndarray:
    out = np.empty(len(sections), dtype=object)
    for sec in np.unique(sections):
        words = lists.get(sec, lists["*"])
        idx = np.flatnonzero(sections == sec)
        out[idx] = np.asarray(words, dtype=object)[rng.integers(0, len(words), len(idx))]
    return out.astype(np.str_)


def company_names(rng: np.random.Generator, sole_prop: np.ndarray, sections: np.ndarray,
                  city: np.ndarray, district: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """个体户 names like 东城区张记五金店 / 江澄市东城区鑫源五金店; firms like 江澄鑫源商贸有限公司."""
    n = len(sole_prop)
    trade = np.asarray(TRADE_NAMES)[rng.integers(0, len(TRADE_NAMES), n)]
    shop = _pick(rng, SHOP_WORDS, sections)
    firm = _pick(rng, FIRM_WORDS, sections)
    suffix = np.asarray(FIRM_SUFFIX)[rng.integers(0, len(FIRM_SUFFIX), n)]
    surname = np.strings.slice(owner, 0, 1)
    pattern = rng.integers(0, 3, n)
    add = np.strings.add
    shop_a = add(add(add(city, district), trade), shop)
    shop_b = add(add(add(district, surname), "记"), shop)
    shop_c = add(add(district, owner), shop)
    shops = np.where(pattern == 0, shop_a, np.where(pattern == 1, shop_b, shop_c))
    city_short = np.strings.replace(city, "市", "")
    firms = add(add(add(city_short, trade), firm), suffix)
    return np.where(sole_prop, shops, firms)


def id_numbers(rng: np.random.Generator, region: np.ndarray, birth_days: np.ndarray) -> np.ndarray:
    """18-digit 居民身份证号: region(6) + birth date(8) + sequence(3) + GB 11643 check digit."""
    n = len(region)
    b = np.asarray(birth_days, dtype="datetime64[D]")
    y = b.astype("datetime64[Y]").astype(np.int64) + 1970
    m = b.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (b - b.astype("datetime64[M]")).astype(np.int64) + 1
    birth = y * 10000 + m * 100 + d
    seq = rng.integers(0, 1000, n)
    body = np.asarray(region, dtype=np.int64) * 10**11 + birth * 1000 + seq
    check = ID_CHECK[(_digits(body, 17) * ID_WEIGHTS).sum(axis=1) % 11]
    return np.strings.add(_zfill(body, 17), check)


def _org_code(rng: np.random.Generator, n: int) -> np.ndarray:
    """9-character organisation code: 8 digits + GB 11714 check character (0-9 or X)."""
    body = rng.integers(10_000_000, 100_000_000, n)
    c = 11 - (_digits(body, 8) * ORG_WEIGHTS).sum(axis=1) % 11
    check = np.where(c == 10, "X", np.where(c == 11, "0", c.astype(np.str_)))
    return np.strings.add(_zfill(body, 8), check)


def uscc_check_char(first17: np.ndarray) -> np.ndarray:
    """GB 32100-2015 check character of 17-character code bodies."""
    arr = np.asarray(first17, dtype="U17")
    codes = arr.view(np.uint32).reshape(len(arr), 17)
    lut = np.full(128, -1, dtype=np.int64)
    for v, ch in enumerate(USCC_CHARS):
        lut[ord(ch)] = v
    vals = lut[codes]
    r = 31 - (vals * USCC_WEIGHTS).sum(axis=1) % 31
    return np.asarray(list(USCC_CHARS))[np.where(r == 31, 0, r)]


def usccs(rng: np.random.Generator, sole_prop: np.ndarray, region: np.ndarray) -> np.ndarray:
    """18-character USCC: 9 + (2 个体工商户 | 1 企业) + region(6) + organisation code(9) + check."""
    n = len(sole_prop)
    head = np.where(sole_prop, "92", "91")
    body = np.strings.add(np.strings.add(head, _zfill(region, 6)), _org_code(rng, n))
    return np.strings.add(body, uscc_check_char(body))


def wrong_uscc_check(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same codes with a different (still well-formed) final character."""
    first17 = np.strings.slice(codes, 0, 17)
    right = uscc_check_char(first17)
    pos = np.array([USCC_CHARS.index(c) for c in right], dtype=np.int64)
    wrong = (pos + rng.integers(1, 31, len(codes))) % 31
    return np.strings.add(first17, np.asarray(list(USCC_CHARS))[wrong])


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """11-digit mobile numbers starting 13x / 15x / 18x."""
    prefix = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), n)]
    return _zfill(prefix * 10**8 + rng.integers(0, 10**8, n), 11)


def luhn_digit(body: np.ndarray, width: int) -> np.ndarray:
    """Luhn check digit of `width`-digit numbers."""
    d = _digits(body, width)
    # from the right, every second digit (starting with the rightmost) is doubled
    doubled = (np.arange(width)[::-1] % 2) == 0
    x = np.where(doubled, d * 2, d)
    x = np.where(x > 9, x - 9, x)
    return (10 - x.sum(axis=1) % 10) % 10


def account_numbers(bank_prefix: int, branch_code: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """19-digit account numbers: bank prefix(4) + branch(3) + serial(11) + Luhn digit."""
    # an affine bijection on 0 … 10¹¹−1 keeps serials unique but not visibly sequential
    scrambled = (np.asarray(serial, dtype=np.int64) * 7_777_777_777 + 1_234_567_891) % 10**11
    body = np.int64(bank_prefix) * 10**14 + np.asarray(branch_code, dtype=np.int64) * 10**11 + scrambled
    return np.strings.add(_zfill(body, 18), luhn_digit(body, 18).astype(np.str_))
