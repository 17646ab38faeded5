"""Generate the course's shipped datasets from templates, with a fixed seed.

Every record is written by this file; nothing is copied from a public dataset.
Running ``python -m course_utils.make_datasets`` rewrites ``course_utils/data/``
byte for byte (a unit test checks this), so the shipped files are reproducible.

Three datasets come out:

* ``news_cls``: short news headlines in Chinese and English, four topics, 16 templates
  per topic and language (four of them ambiguous), each row with its ``template_id`` so a
  split can hold whole templates out; with deliberate mess (duplicates, HTML, PII,
  full-width text, empty and over-long texts, wrong labels), each messy row flagged so
  cleaning lessons can score rules.
* ``ner_bio``: sentences with PER/LOC/ORG entities, Chinese at character level and
  English at word level, tagged in BIO.
* ``sft_alpaca`` and ``sft_chat``: instruction data whose answers a program can
  verify (see :mod:`course_utils.tasks`), as alpaca records and as chat messages.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from course_utils import tasks
from course_utils.data import LABELS

DATA_DIR = Path(__file__).resolve().parent / "data"

# --- Classification: slot-filled headlines -----------------------------------------------
#
# Real news shares its names across sections: a company is in finance and tech news, a club in
# sports and finance news, a celebrity in entertainment and finance news.  So do these slots,
# and a topic can only be told from what the headline says happened, not from who is named.
# Each topic and language has 12 ordinary templates and 4 ambiguous ones (``amb1`` ... ``amb4``):
# a headline that a reader could file under two topics, labelled by the rule in the datasheet.

_ZH_SLOTS = {
    "club": ["北京国安", "上海申花", "广州队", "山东泰山", "浙江队", "成都蓉城", "武汉三镇", "深圳队"],
    "player": ["张伟", "李娜", "王磊", "刘洋", "陈静", "赵敏", "孙浩", "周婷"],
    "event": ["全运会", "亚运会", "世锦赛", "公开赛", "联赛决赛", "锦标赛"],
    "medal": ["金牌", "银牌", "铜牌", "冠军", "亚军"],
    "company": ["华星科技", "远航集团", "东方银行", "云帆软件", "长江电子", "明德证券", "海川能源", "星河互联"],
    "product": ["智能手机", "笔记本电脑", "无人机", "智能手表", "电动汽车", "芯片", "云服务器", "机器人"],
    "platform": ["星河视频", "云帆音乐", "乐享直播", "看点影视"],
    "star": ["林晓", "杨帆", "苏琪", "韩雪", "郑凯", "吴彤", "何韵", "许诺"],
    "work": ["星河", "远方", "归途", "长夜", "初心", "山海", "时光", "迷城"],
    "city": ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安"],
}

_ZH_TEMPLATES = {
    "sports": [
        "{club}主场以{a}比{b}战胜{club2}",
        "{player}在{event}中夺得{medal}",
        "{city}马拉松今日开跑，{n}名选手参赛",
        "{club}球迷在{city}街头庆祝绝杀",
        "{player}伤愈复出，帮助{club}取得{a}连胜",
        "{player}称{club}更衣室气氛从未这么好",
        "{club}客场{b}比{a}憾负{club2}，排名跌至第{q}位",
        "{player}告别{club}，感谢{city}球迷",
        "{club}门将{player}扑出点球，全队晋级八强",
        "{club}全队在{city}恢复训练",
        "{player}宣布退役，结束{years}年职业生涯",
        "{city}体育馆将承办{event}，{club}球迷踊跃购票",
        "{star}现身{city}马拉松，以{a}小时{mins}分完赛",
        "{company}冠名的{club}迎来{a}连胜，{player}获评全场最佳",
        "{player}在{city}慈善网球赛中击败{star}",
        "{company}员工组队参加{city}龙舟赛并夺冠",
    ],
    "finance": [
        "{company}第{q}季度营收同比增长{pct}%",
        "{company}股价收涨{pct}%，成交额创新高",
        "{company}在{city}裁员{n}人",
        "{company}负责人称{city}门店明年日子不好过",
        "{company}发布年报，净利润达到{n}亿元",
        "人民币汇率小幅波动，分析师上调{company}目标价至{n}元",
        "{club}年度收入{n}亿元，商业赞助占比{pct}%",
        "{star}旗下公司完成{n}亿元融资",
        "{company}拟以{n}亿元收购{company2}",
        "{club}母公司申请上市，计划募资{n}亿元",
        "{company}第{q}季度业绩超预期，投资者松了一口气",
        "{company}在{city}新开{n}家网点",
        "{club}以{n}千万元转会费签下{player}",
        "{star}主演的电影《{work}》票房突破{n}亿元",
        "{platform}斥资{n}亿元买下《{work}》独家版权",
        "{company}以{n}千万元拿下{club}主场冠名权",
    ],
    "tech": [
        "{company}发布新款{product}，续航提升{pct}%",
        "{company}宣布自研{product}量产",
        "{company}将{product}团队迁往{city}",
        "研究团队提出新算法，{product}能耗降低{pct}%",
        "{company}开源大模型，参数规模达{n}亿",
        "{company}推送{product}新固件，修复多个安全漏洞",
        "{platform}上线新版推荐算法，用户使用时长增加{pct}%",
        "{company}在{city}展示一款会说话的{product}原型",
        "{city}启动自动驾驶测试，首批{n}辆车上路",
        "黑客入侵{company}，{n}万用户密码遭泄露",
        "{platform}发生大规模宕机，{company}称已修复",
        "{city}用户反映{product}更新后频繁出问题",
        "{club}推出官方{product}应用，球迷可实时查看比赛数据",
        "{company}为{star}打造虚拟数字人，今日正式上线",
        "{star}携手{company}推出联名{product}",
        "{platform}用人工智能把《{work}》译配成{n}种语言",
    ],
    "entertainment": [
        "{star}主演的电影《{work}》今日上映",
        "{star}新专辑《{work}》今日上线",
        "电视剧《{work}》收视率领跑同时段，{star}获赞",
        "{star}将在{city}举办巡回演唱会",
        "{star}坦言在{city}度过了艰难的一年",
        "{star}在{city}告别演出后感谢粉丝",
        "{platform}独播剧《{work}》首日播放量破{n}千万",
        "导演新作《{work}》曝光首支预告，{star}领衔主演",
        "{star}与{star2}被拍到在{city}同游",
        "{star}与{star2}将于明年春天在{city}举行婚礼",
        "{star}加盟综艺《{work}》担任常驻嘉宾",
        "话剧《{work}》在{city}连演{n}场",
        "{player}跨界出演电影《{work}》，与{star}搭档",
        "{company}创始人客串网剧《{work}》",
        "{club}球员现身{star}新歌《{work}》的音乐视频",
        "纪录片《{work}》记录{company}工程师研发{product}的过程",
    ],
}

_EN_SLOTS = {
    "club": ["the Lions", "the Falcons", "Riverside FC", "the Comets", "Northport United", "the Tigers",
             "Harbour City", "the Rangers"],
    "player": ["Alice Moreno", "Ben Carter", "Chloe Davis", "Daniel Kim", "Emma Novak", "Felix Grant",
               "Omar Haddad", "Nina Petrova"],
    "event": ["the national open", "the world championship", "the league final", "the spring games",
              "the regional cup", "the indoor championship"],
    "medal": ["gold", "silver", "bronze", "the title"],
    "company": ["Apex Corp", "Bluewave Inc", "Cedar Bank", "Delta Systems", "Evergreen Energy", "Fusion Labs",
                "Granite Capital", "Helix Robotics"],
    "product": ["smartphone", "laptop", "drone", "smartwatch", "electric car", "chip", "cloud server", "robot"],
    "platform": ["StreamBox", "Vista Video", "TuneHub", "PlayNow"],
    "star": ["Grace Lee", "Henry Stone", "Iris Walsh", "Jack Reed", "Kate Morgan", "Leo Park", "Maya Cole",
             "Ruby Hart"],
    "work": ["Silent River", "Night Train", "Paper Moon", "Blue Hour", "Lost Coast", "Iron Garden",
             "Glass City", "Red Harbor"],
    "city": ["London", "Toronto", "Sydney", "Chicago", "Berlin", "Singapore", "Dublin", "Denver"],
}

_EN_TEMPLATES = {
    "sports": [
        "{club} beat {club2} {a}-{b} at home",
        "{player} wins {medal} at {event}",
        "{n} runners start the {city} marathon",
        "{club} fans celebrate in {city} after a late winner",
        "{player} returns from injury as {club} extend streak to {a}",
        "{player} says the mood at {club} has never been better",
        "{club} lose {b}-{a} away to {club2} and slip to place {q}",
        "{player} thanks {club} fans before leaving {city}",
        "Goalkeeper {player} saves a penalty to send {club} through",
        "{club} players return to training in {city}",
        "{player} retires after {years} seasons with {club}",
        "{city} stadium to host {event} as {club} fans queue for tickets",
        "{star} finishes the {city} marathon in {a} hours {mins} minutes",
        "{company}-sponsored {club} win {a} in a row as {player} stars",
        "{player} beats {star} in a charity tennis match in {city}",
        "A {company} staff crew wins the {city} dragon boat race",
    ],
    "finance": [
        "{company} reports {pct}% revenue growth in Q{q}",
        "{company} shares close up {pct}% on record volume",
        "{company} cuts {n} jobs in {city}",
        "{company} chief warns of a tough year ahead for {city} shops",
        "{company} posts annual profit of {n} billion",
        "Analysts raise their {company} price target to {n} dollars",
        "{club} report revenue of {n} million with sponsorship up {pct}%",
        "{star}'s holding company raises {n} million in new funding",
        "{company} agrees to buy {company2} for {n} billion",
        "Parent company of {club} files for a stock market listing in {city}",
        "Investors cheer as {company} beats forecasts for Q{q}",
        "{company} opens {n} new branches in {city}",
        "{club} sign {player} for a {n} million transfer fee",
        "{star}'s film {work} passes {n} million at the box office",
        "{platform} pays {n} million for the rights to {work}",
        "{company} pays {n} million to put its name on the {club} stadium",
    ],
    "tech": [
        "{company} unveils a new {product} with {pct}% longer battery life",
        "{company} starts mass production of its own {product}",
        "{company} moves its {product} team to {city}",
        "New algorithm cuts {product} energy use by {pct}%",
        "{company} open-sources a model with {n} billion parameters",
        "{company} ships a {product} firmware update that fixes several security flaws",
        "{platform} rolls out a new recommendation algorithm in {city}",
        "{company} shows off a talking {product} prototype in {city}",
        "{city} begins self-driving trials with {n} test cars",
        "Hackers break into {company} and expose {n} thousand passwords",
        "{platform} suffers a major outage; {company} says it is fixed",
        "Users in {city} report problems with the new {product} update",
        "{club} launch an official {product} app with live match data",
        "{company} builds a digital avatar of {star} for {platform}",
        "{star} launches a {product} with {company}",
        "{platform} uses AI to dub {work} into {n} languages",
    ],
    "entertainment": [
        "{star}'s new film {work} opens in cinemas today",
        "{star} releases new album {work}",
        "TV drama {work} tops the ratings in its slot as {star} wins praise",
        "{star} announces a concert tour stop in {city}",
        "{star} opens up about a difficult year in {city}",
        "{star} thanks fans in {city} after the last show",
        "{platform} exclusive {work} draws {n} million views on day one",
        "First trailer for {work} released, starring {star}",
        "{star} and {star2} spotted together in {city}",
        "{star} and {star2} to marry in {city} next spring",
        "{star} joins the cast of the variety show {work}",
        "Stage play {work} runs for {n} nights in {city}",
        "{player} makes a film debut in {work} alongside {star}",
        "{company} founder makes a cameo in web series {work}",
        "{club} players appear in the video for {star}'s song {work}",
        "Documentary {work} follows {company} engineers building a {product}",
    ],
}

N_AMBIGUOUS = 4  # the last four templates of every topic and language


def template_ids(lang: str, label: str) -> list[str]:
    """Ids of one topic's templates in one language: ``zh-sports-01`` ... ``-12``, ``-amb1`` ... ``-amb4``."""
    n = len((_ZH_TEMPLATES if lang == "zh" else _EN_TEMPLATES)[label])
    return [f"{lang}-{label}-{k + 1:02d}" for k in range(n - N_AMBIGUOUS)] + \
        [f"{lang}-{label}-amb{k + 1}" for k in range(N_AMBIGUOUS)]


def is_ambiguous_template(template_id: str) -> bool:
    """True for the templates that straddle two topics (labelled by the datasheet's rule)."""
    return template_id.rsplit("-", 1)[-1].startswith("amb")


def _fill(template: str, slots: dict, rng: random.Random) -> str:
    values = {}
    for key, options in slots.items():
        values[key] = rng.choice(options)
        values[key + "2"] = rng.choice([o for o in options if o != values[key]])
    values.update(a=rng.randint(1, 5), b=rng.randint(0, 4), n=rng.randint(2, 99), q=rng.randint(1, 4),
                  pct=rng.randint(2, 60), years=rng.randint(5, 19), mins=rng.randint(10, 59))
    return template.format(**values)


_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}


def _mess(text: str, kind: str, lang: str, rng: random.Random) -> str:
    """Return a dirty variant of ``text``: the kinds of mess real scraped data has."""
    if kind == "html":
        return f"<p>{text}</p><br/>" if rng.random() < 0.5 else f"<div class=\"news\"><b>{text}</b> &amp; more</div>"
    if kind == "url":
        tail = f" 详情见 https://news.example.com/a/{rng.randint(1000, 9999)}" if lang == "zh" else f" Read more: https://news.example.org/story/{rng.randint(1000, 9999)}"
        return text + tail
    if kind == "email":
        return text + (f"，投稿请联系 editor{rng.randint(1, 99)}@example.com" if lang == "zh" else f" - tips to desk{rng.randint(1, 99)}@example.org")
    if kind == "phone":
        return text + (f"，热线 138-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}" if lang == "zh" else f" Call +1 415-555-{rng.randint(1000, 9999)}")
    if kind == "fullwidth":
        return "".join(_FULLWIDTH.get(c, "\u3000" if c == " " else c) for c in text)
    if kind == "near_dup":
        edits = ["！", "。", "…", "（更新）"] if lang == "zh" else ["!", ".", " (updated)", " - report"]
        return text + rng.choice(edits)
    if kind == "too_long":
        return ("，" if lang == "zh" else " ").join([text] * 120)
    raise ValueError(kind)


def make_news_cls(seed: int = 0, per_topic: int = 150) -> list[dict]:
    """``per_topic`` distinct clean headlines per topic and language, then the flagged mess.

    Templates take turns (row k of a topic uses template k mod 16), so every template fills 9 or
    10 rows and a split by template knows how many rows it moves."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for lang, templates, slots in (("zh", _ZH_TEMPLATES, _ZH_SLOTS), ("en", _EN_TEMPLATES, _EN_SLOTS)):
        for label in LABELS:
            ids = template_ids(lang, label)
            for k in range(per_topic):
                j = k % len(ids)
                text = _fill(templates[label][j], slots, rng)
                while text in seen:  # every template has at least 32 fillings, so this ends
                    text = _fill(templates[label][j], slots, rng)
                seen.add(text)
                rows.append({"text": text, "label": label, "lang": lang, "template_id": ids[j], "flags": []})
    rng.shuffle(rows)
    clean = list(rows)
    # Deliberate mess: every messy row carries a flag naming what is wrong with it, and keeps the
    # template of the row it was copied from (so a split by template keeps copies together).
    for kind, count in (("html", 30), ("url", 30), ("email", 25), ("phone", 25), ("fullwidth", 30), ("too_long", 8)):
        for src in rng.sample(clean, count):
            rows.append({**src, "text": _mess(src["text"], kind, src["lang"], rng), "flags": [kind]})
    for src in rng.sample(clean, 40):
        rows.append({**src, "flags": ["exact_dup"]})
    for src in rng.sample(clean, 40):
        rows.append({**src, "text": _mess(src["text"], "near_dup", src["lang"], rng), "flags": ["near_dup"]})
    for lang in ("zh", "en"):
        for blank in ("", "   ", "\n"):
            rows.append({"text": blank, "label": rng.choice(LABELS), "lang": lang, "template_id": "none",
                         "flags": ["empty"]})
    # Planted label errors come from ordinary templates only: on an ambiguous headline the "wrong"
    # topic could be the one a reader would pick, and then it would not be an error.
    for src in rng.sample([r for r in clean if not is_ambiguous_template(r["template_id"])], 36):
        wrong = rng.choice([label for label in LABELS if label != src["label"]])
        src["label"], src["flags"] = wrong, ["mislabeled"]
    rng.shuffle(rows)
    return [{"id": f"cls-{i:05d}", **row} for i, row in enumerate(rows)]


# --- The first release of news_cls, kept for the course tokenizer ------------------------
#
# The course tokenizer (``course_tokenizer.py``) was trained on the clean headlines of the first
# release.  Its corpus is rebuilt from this generator, so token ids in every notebook stay the
# same now that the shipped ``news_cls`` has more templates.

_V1_ZH_SLOTS = {
    "team": ["北京国安", "上海申花", "广州队", "山东泰山", "湖人队", "皇家马德里", "中国女排", "浙江队"],
    "player": ["张伟", "李娜", "王磊", "刘洋", "陈静", "赵敏", "孙浩", "周婷"],
    "event": ["全运会", "亚运会", "世锦赛", "马拉松", "公开赛", "联赛决赛"],
    "medal": ["金牌", "银牌", "铜牌", "冠军", "亚军"],
    "company": ["华星科技", "远航集团", "东方银行", "云帆软件", "长江电子", "明德证券", "海川能源", "星河互联"],
    "product": ["智能手机", "笔记本电脑", "无人机", "智能手表", "电动汽车", "芯片", "云服务器", "机器人"],
    "star": ["林晓", "杨帆", "苏琪", "韩雪", "郑凯", "吴彤", "何韵", "许诺"],
    "work": ["星河", "远方", "归途", "长夜", "初心", "山海", "时光", "迷城"],
    "city": ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安"],
}

_V1_ZH_TEMPLATES = {
    "sports": [
        "{team}主场以{a}比{b}战胜{team2}",
        "{player}在{event}中夺得{medal}",
        "{city}{event}今日开跑，{n}名选手参赛",
        "{team}官宣新主帅，球迷期待本赛季表现",
        "{player}伤愈复出，帮助{team}取得{a}连胜",
        "{event}女子组决赛，{player}刷新赛会纪录",
    ],
    "finance": [
        "{company}第{q}季度营收同比增长{pct}%",
        "{company}股价收涨{pct}%，成交额创新高",
        "央行宣布下调存款准备金率{small}个百分点",
        "{city}楼市成交量环比下降{pct}%",
        "{company}发布年报，净利润达到{n}亿元",
        "人民币汇率小幅波动，分析师看好{company}前景",
    ],
    "tech": [
        "{company}发布新款{product}，续航提升{pct}%",
        "{company}宣布自研{product}量产",
        "{city}建成新一代数据中心，算力提升{n}倍",
        "研究团队提出新算法，{product}能耗降低{pct}%",
        "{company}开源大模型，参数规模达{n}亿",
        "{product}新固件上线，修复多个安全漏洞",
    ],
    "entertainment": [
        "{star}主演的电影《{work}》票房突破{n}亿",
        "{star}新专辑《{work}》今日上线",
        "电视剧《{work}》收视率领跑同时段",
        "{star}将在{city}举办巡回演唱会",
        "综艺节目《{work}》第{q}季定档",
        "{star}凭借《{work}》获得最佳女主角提名",
    ],
}

_V1_EN_SLOTS = {
    "team": ["the Lions", "the Falcons", "Riverside FC", "the Comets", "Northport United", "the Tigers"],
    "player": ["Alice Moreno", "Ben Carter", "Chloe Davis", "Daniel Kim", "Emma Novak", "Felix Grant"],
    "event": ["the city marathon", "the national open", "the world championship", "the league final"],
    "medal": ["gold", "silver", "bronze", "the title"],
    "company": ["Apex Corp", "Bluewave Inc", "Cedar Bank", "Delta Systems", "Evergreen Energy", "Fusion Labs"],
    "product": ["smartphone", "laptop", "drone", "smartwatch", "electric car", "chip", "cloud server", "robot"],
    "star": ["Grace Lee", "Henry Stone", "Iris Walsh", "Jack Reed", "Kate Moss", "Leo Park"],
    "work": ["Silent River", "Night Train", "Paper Moon", "Blue Hour", "Lost Coast", "Iron Garden"],
    "city": ["London", "Toronto", "Sydney", "Chicago", "Berlin", "Singapore"],
}

_V1_EN_TEMPLATES = {
    "sports": [
        "{team} beat {team2} {a}-{b} at home",
        "{player} wins {medal} at {event}",
        "{n} runners start {event} in {city}",
        "{team} name a new head coach before the season",
        "{player} returns from injury as {team} extend streak to {a}",
        "{player} sets a meet record in {event}",
    ],
    "finance": [
        "{company} reports {pct}% revenue growth in Q{q}",
        "{company} shares close up {pct}% on record volume",
        "Central bank cuts reserve requirement by {small} points",
        "Home sales in {city} fall {pct}% month on month",
        "{company} posts annual profit of {n} billion",
        "Analysts upgrade {company} as the currency steadies",
    ],
    "tech": [
        "{company} unveils a new {product} with {pct}% longer battery life",
        "{company} starts mass production of its own {product}",
        "{city} opens a data centre with {n} times more compute",
        "New algorithm cuts {product} energy use by {pct}%",
        "{company} open-sources a model with {n} billion parameters",
        "{product} firmware update fixes several security flaws",
    ],
    "entertainment": [
        "{star}'s film {work} passes {n} million at the box office",
        "{star} releases new album {work}",
        "TV drama {work} tops the ratings in its slot",
        "{star} announces a concert tour stop in {city}",
        "Reality show {work} returns for season {q}",
        "{star} earns a best actress nomination for {work}",
    ],
}


def _fill_v1(template: str, slots: dict, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in slots.items()}
    values["team2"] = rng.choice([t for t in slots["team"] if t != values["team"]])
    values.update(a=rng.randint(1, 5), b=rng.randint(0, 4), n=rng.randint(2, 99),
                  q=rng.randint(1, 4), pct=rng.randint(2, 60), small=rng.choice([0.25, 0.5]))
    return template.format(**values)


def make_news_cls_v1(seed: int = 0) -> list[dict]:
    """The first release of ``news_cls`` (six templates per topic and language, no ``template_id``)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for lang, templates, slots in (("zh", _V1_ZH_TEMPLATES, _V1_ZH_SLOTS), ("en", _V1_EN_TEMPLATES, _V1_EN_SLOTS)):
        for label in LABELS:
            made = 0
            while made < 150:
                text = _fill_v1(rng.choice(templates[label]), slots, rng)
                if text in seen:
                    continue
                seen.add(text)
                rows.append({"text": text, "label": label, "lang": lang, "flags": []})
                made += 1
    rng.shuffle(rows)
    clean = list(rows)
    # Deliberate mess: every messy row carries a flag naming what is wrong with it.
    for kind, count in (("html", 30), ("url", 30), ("email", 25), ("phone", 25), ("fullwidth", 30), ("too_long", 8)):
        for src in rng.sample(clean, count):
            rows.append({"text": _mess(src["text"], kind, src["lang"], rng), "label": src["label"],
                         "lang": src["lang"], "flags": [kind]})
    for src in rng.sample(clean, 40):
        rows.append({**src, "flags": ["exact_dup"]})
    for src in rng.sample(clean, 40):
        rows.append({**src, "text": _mess(src["text"], "near_dup", src["lang"], rng), "flags": ["near_dup"]})
    for lang in ("zh", "en"):
        for blank in ("", "   ", "\n"):
            rows.append({"text": blank, "label": rng.choice(LABELS), "lang": lang, "flags": ["empty"]})
    for src in rng.sample(clean, 36):
        wrong = rng.choice([label for label in LABELS if label != src["label"]])
        src["label"], src["flags"] = wrong, ["mislabeled"]
    rng.shuffle(rows)
    return [{"id": f"cls-{i:05d}", **row} for i, row in enumerate(rows)]


# --- NER: BIO tags ---------------------------------------------------------------------

_ZH_NER_TEMPLATES = [
    "{PER}昨天在{LOC}参观了{ORG}。",
    "{ORG}宣布{PER}出任{LOC}分公司总经理。",
    "{PER}和{PER2}一起从{LOC}出发前往{LOC2}。",
    "记者在{LOC}采访了{ORG}的{PER}。",
    "{PER}毕业于{ORG}，现居{LOC}。",
    "{ORG}在{LOC}举办了发布会。",
]
_ZH_NER = {
    "PER": ["张伟", "李娜", "王磊", "刘洋", "陈静", "欧阳明", "赵敏", "孙浩"],
    "LOC": ["北京", "上海", "杭州", "成都", "西安", "长江", "黄山", "深圳湾"],
    "ORG": ["清华大学", "华星科技", "东方银行", "国家图书馆", "云帆软件", "人民医院", "长江电子"],
}
_EN_NER_TEMPLATES = [
    "{PER} visited {ORG} in {LOC} yesterday .",
    "{ORG} named {PER} head of its {LOC} office .",
    "{PER} and {PER2} travelled from {LOC} to {LOC2} .",
    "Reporters met {PER} of {ORG} in {LOC} .",
    "{PER} studied at {ORG} and now lives in {LOC} .",
    "{ORG} held a press event in {LOC} .",
]
_EN_NER = {
    "PER": ["Alice Moreno", "Ben Carter", "Chloe", "Daniel Kim", "Emma Novak", "Felix Grant", "Sam"],
    "LOC": ["London", "New York", "Sydney", "Berlin", "Cape Town", "Lake Geneva", "Tokyo"],
    "ORG": ["Apex Corp", "Cedar Bank", "the British Museum", "Fusion Labs", "City Hospital", "Northwood University"],
}


def _ner_sentence(template: str, pools: dict, rng: random.Random, split_words: bool) -> tuple[list, list]:
    picks = {}
    for key, pool in pools.items():
        first = rng.choice(pool)
        picks[key] = first
        picks[key + "2"] = rng.choice([p for p in pool if p != first])
    tokens, tags = [], []
    for piece in _split_template(template):
        if piece.startswith("{"):
            name = piece[1:-1]
            entity_type = name.rstrip("2")
            units = picks[name].split() if split_words else list(picks[name])
            tokens += units
            tags += [f"B-{entity_type}"] + [f"I-{entity_type}"] * (len(units) - 1)
        else:
            units = piece.split() if split_words else list(piece)
            tokens += units
            tags += ["O"] * len(units)
    return tokens, tags


def _split_template(template: str) -> list[str]:
    parts, buf, i = [], "", 0
    while i < len(template):
        if template[i] == "{":
            if buf:
                parts.append(buf)
            end = template.index("}", i)
            parts.append(template[i:end + 1])
            buf, i = "", end + 1
        else:
            buf += template[i]
            i += 1
    if buf:
        parts.append(buf)
    return parts


def make_ner_bio(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows, seen = [], set()
    for lang, templates, pools, split_words in (("zh", _ZH_NER_TEMPLATES, _ZH_NER, False),
                                                ("en", _EN_NER_TEMPLATES, _EN_NER, True)):
        made = 0
        while made < 200:
            tokens, tags = _ner_sentence(rng.choice(templates), pools, rng, split_words)
            key = " ".join(tokens)
            if key in seen:
                continue
            seen.add(key)
            rows.append({"lang": lang, "tokens": tokens, "tags": tags})
            made += 1
    rng.shuffle(rows)
    return [{"id": f"ner-{i:05d}", **row} for i, row in enumerate(rows)]


# --- Instruction data: verifiable tasks -------------------------------------------------

SYSTEM_PROMPTS = {"zh": "你是一个乐于助人的助手。请只给出答案。", "en": "You are a helpful assistant. Give only the answer."}


def make_sft_alpaca(n: int = 1200, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = [tasks.sample_task(rng) for _ in range(n)]
    return [{"id": f"alp-{i:05d}", **row} for i, row in enumerate(rows)]


def alpaca_to_user_text(row: dict) -> str:
    """The user turn for an alpaca record: instruction, then input on its own line if any."""
    return row["instruction"] + ("\n" + row["input"] if row["input"] else "")


def make_sft_chat(n: int = 600, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lang = rng.choice(["zh", "en"])
        turns = 2 if rng.random() < 0.3 else 1
        messages = [{"role": "system", "content": SYSTEM_PROMPTS[lang]}] if rng.random() < 0.5 else []
        items = [tasks.sample_task(rng, lang=lang) for _ in range(turns)]
        for item in items:
            messages += [{"role": "user", "content": alpaca_to_user_text(item)},
                         {"role": "assistant", "content": item["output"]}]
        rows.append({"id": f"chat-{i:05d}", "lang": lang, "tasks": [t["task"] for t in items],
                     "template_ids": [t["template_id"] for t in items],
                     "params": [t["params"] for t in items], "messages": messages})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")


def build_all(out_dir: Path | str = "course_data") -> dict[str, int]:
    """Write every dataset and the course tokenizer into ``out_dir`` (default ``./course_data``).
    The default never points into the installed package: regenerating the shipped files is an
    explicit ``build_all(DATA_DIR)`` (or ``python -m course_utils.make_datasets --into-package``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {
        "news_cls": make_news_cls(),
        "ner_bio": make_ner_bio(),
        "sft_alpaca": make_sft_alpaca(),
        "sft_chat": make_sft_chat(),
    }
    for name, rows in made.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    from course_utils.course_tokenizer import train_course_tokenizer
    train_course_tokenizer().save_pretrained(out_dir / "course_tokenizer")
    return {name: len(rows) for name, rows in made.items()}


if __name__ == "__main__":
    import sys
    target = DATA_DIR if sys.argv[1:] == ["--into-package"] else (sys.argv[1] if sys.argv[1:] else "course_data")
    for name, count in build_all(target).items():
        print(f"{name}: {count} records")
