"""Verifiable instruction tasks: each answer is computed from the task's parameters.

Because a program knows the right answer, a later lesson can measure exact-match
accuracy of a model before and after SFT, with no human grader.  Every task has three
phrasings (templates) per language, so train and test can be split by template.

:data:`TASKS` are the eight tasks of the shipped ``sft_alpaca`` data.  Most of them can be told
apart from the input alone (a review is a sentiment task, "12 km metres" a conversion), so a
model can score well on them while ignoring the instruction.  :data:`FAMILIES` adds tasks that
*share their input*: one string asked for its length, first letter, last letter or whether it
contains a letter; one quantity converted up or down; one record asked for each field.  On
these only the instruction says which answer is wanted.  :data:`PARAPHRASES` holds extra,
meaning-preserving wordings of each trained phrasing (never of the held-out phrasing 2).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import string

TASKS = ["add", "reverse", "upper", "count", "unit", "date", "extract", "sentiment"]

TEMPLATES = {
    ("add", "zh"): ["计算 {a} + {b}，只写结果。", "{a} 加 {b} 等于多少？", "求和：{a} 与 {b}"],
    ("add", "en"): ["What is {a} + {b}? Reply with the number only.", "Add {a} and {b}.", "Compute the sum of {a} and {b}."],
    ("reverse", "zh"): ["把下面的字符串倒过来写。", "请将这个字母串反转。", "倒序输出下列字母。"],
    ("reverse", "en"): ["Reverse the following string.", "Write these letters backwards.", "Return the string in reverse order."],
    ("upper", "zh"): ["把下面的字母改成大写。", "请将这个字母串转换为大写。", "大写形式是什么？"],
    ("upper", "en"): ["Convert the text to upper case.", "Write these letters in capitals.", "What is the upper-case form?"],
    ("count", "zh"): ["下面的字符串有几个字母？", "数一数这个字母串的长度。", "统计字母个数。"],
    ("count", "en"): ["How many letters are in the string below?", "Count the letters.", "What is the length of this string?"],
    ("unit", "zh"): ["把 {n} {src} 换算成{dst}，只写数字。", "{n} {src}等于多少{dst}？", "单位换算：{n} {src} = ? {dst}"],
    ("unit", "en"): ["Convert {n} {src} to {dst}. Give the number only.", "How many {dst} are in {n} {src}?", "Unit conversion: {n} {src} = ? {dst}"],
    ("date", "zh"): ["{date} 之后 {k} 天是哪一天？用 YYYY-MM-DD 回答。", "从 {date} 往后数 {k} 天，是几号？", "日期计算：{date} 加 {k} 天"],
    ("date", "en"): ["What date is {k} days after {date}? Answer as YYYY-MM-DD.", "Add {k} days to {date}.", "Date arithmetic: {date} plus {k} days"],
    ("extract", "zh"): ["从下面的记录中提取{field_name}。", "这条记录里的{field_name}是什么？", "只输出记录中的{field_name}。"],
    ("extract", "en"): ["Extract the {field_name} from the record below.", "What is the {field_name} in this record?", "Output only the {field_name} from the record."],
    ("sentiment", "zh"): ["判断下面评论的情感，从“正面”“负面”中选一个。", "这条评论是正面还是负面？", "情感分类（正面/负面）："],
    ("sentiment", "en"): ["Classify the sentiment of the review as positive or negative.", "Is this review positive or negative?", "Sentiment (positive/negative):"],
}

# --- Tasks that share their input: only the instruction decides the answer ------------------
# Phrasings 0 and 1 are for training; phrasing 2 is held out.  The held-out phrasing keeps the
# key word (first, larger, age, ...) in a new sentence frame, so a model can follow it only if it
# learned which word matters rather than the whole trained sentence.
FAMILIES = {
    "string": ("count", "first", "last", "contains"),
    "quantity": ("to_larger", "to_smaller"),
    "record": ("name", "age", "city"),
}
FAMILY_OF = {task: family for family, members in FAMILIES.items() for task in members}
SHARED_INPUT_TASKS = tuple(FAMILY_OF)

_FIELD_WORDS = {"zh": {"name": "姓名", "age": "年龄", "city": "城市"}, "en": {"name": "name", "age": "age", "city": "city"}}
_SIZE_WORDS = {"zh": ("较小", "较大"), "en": ("smaller", "larger")}

TEMPLATES_SHARED = {
    ("first", "zh"): ["下面的字符串的第一个字母是什么？", "写出这个字母串的第一个字母。", "看下面这串字母，告诉我第一个是什么。"],
    ("first", "en"): ["What is the first letter of the string below?", "Give the first letter of this string.",
                      "Look at the letters below and tell me the first one."],
    ("last", "zh"): ["下面的字符串的最后一个字母是什么？", "写出这个字母串的最后一个字母。", "看下面这串字母，告诉我最后一个是什么。"],
    ("last", "en"): ["What is the last letter of the string below?", "Give the last letter of this string.",
                     "Look at the letters below and tell me the last one."],
    ("contains", "zh"): ["下面的字符串里有字母 {c} 吗？回答“是”或“否”。", "字母 {c} 是否出现在这个字母串中？（是/否）",
                         "看下面这串字母：{c} 在其中吗？回答是或否。"],
    ("contains", "en"): ["Does the string below contain the letter {c}? Answer yes or no.",
                         "Is the letter {c} in this string? yes/no",
                         "Look at the letters below: is {c} among them? Answer yes or no."],
}
for _lang, (_small, _large) in _SIZE_WORDS.items():
    for _task, (_a, _b) in (("to_larger", (_small, _large)), ("to_smaller", (_large, _small))):
        TEMPLATES_SHARED[(_task, _lang)] = (
            [f"把这个数从{_a}的单位换算成{_b}的单位。", f"这个数以{_a}的单位给出，换成{_b}的单位是多少？",
             f"告诉我这个量用{_b}的单位是多少，它是按{_a}的单位写的。"] if _lang == "zh" else
            [f"Convert the number from the {_a} unit to the {_b} unit.",
             f"The number is given in the {_a} unit. What is it in the {_b} unit?",
             f"Tell me this amount in the {_b} unit; it is written in the {_a} unit."])
    for _field, _word in _FIELD_WORDS[_lang].items():
        TEMPLATES_SHARED[(_field, _lang)] = (
            [f"下面记录中的{_word}是什么？", f"写出这条记录里的{_word}。", f"根据这条记录，只告诉我{_word}。"] if _lang == "zh" else
            [f"What is the {_word} in the record below?", f"Give the {_word} from this record.",
             f"From this record, tell me only the {_word}."])

# Meaning-preserving rewordings of the trained phrasings, written by hand: each keeps the key
# word and the slots, and none uses the held-out frame ("look at ... tell me", "告诉我").
PARAPHRASES = {
    ("count", "zh"): ["这个字母串一共有多少个字母？", "请给出下面字符串的字母数量。", "下面这串字母有多少个？", "数出字母串中的字母数。"],
    ("count", "en"): ["How long is the string below, in letters?", "Give the number of letters in this string.",
                      "Count how many letters the string has.", "Number of letters in the string below:"],
    ("first", "zh"): ["请写出下面字符串的第一个字母。", "这个字母串最前面的字母是什么？", "下面字母串开头的字母是哪个？", "输出字符串的第一个字母。"],
    ("first", "en"): ["Write the first letter of the string below.", "Which letter comes first in this string?",
                      "The string below starts with which letter?", "Output the first letter of the string."],
    ("last", "zh"): ["请写出下面字符串的最后一个字母。", "这个字母串最后面的字母是什么？", "下面字母串结尾的字母是哪个？", "输出字符串的最后一个字母。"],
    ("last", "en"): ["Write the last letter of the string below.", "Which letter comes last in this string?",
                     "The string below finishes with which letter?", "Output the last letter of the string."],
    ("contains", "zh"): ["下面的字母串包含 {c} 吗？答“是”或“否”。", "检查字母 {c} 是否在这个字符串里（是/否）。",
                         "字母串里能找到 {c} 吗？是或否", "是或否：字符串中有 {c}？"],
    ("contains", "en"): ["Is there a {c} in the string below? Reply yes or no.",
                         "Check whether the letter {c} occurs in this string (yes/no).",
                         "Does {c} occur in the letters below? yes or no", "Yes or no: the string contains {c}?"],
}
for _lang, (_small, _large) in _SIZE_WORDS.items():
    for _task, (_a, _b) in (("to_larger", (_small, _large)), ("to_smaller", (_large, _small))):
        PARAPHRASES[(_task, _lang)] = (
            [f"把这个数由{_a}的单位转换为{_b}的单位。", f"按{_a}的单位读这个数，换算成{_b}的单位。",
             f"{_a}的单位换算到{_b}的单位：", f"这个数按{_a}的单位计，换成{_b}的单位是多少？"] if _lang == "zh" else
            [f"Change the number from the {_a} unit into the {_b} unit.",
             f"Read the number in the {_a} unit and convert it to the {_b} unit.",
             f"{_a.capitalize()} unit to {_b} unit: convert the number.",
             f"What is the number, given in the {_a} unit, in the {_b} unit?"])
    for _field, _word in _FIELD_WORDS[_lang].items():
        PARAPHRASES[(_field, _lang)] = (
            [f"这条记录写的{_word}是哪个？", f"输出这条记录的{_word}字段。", f"记录里的{_word}：", f"把下面记录中的{_word}抄出来。"]
            if _lang == "zh" else
            [f"Which {_word} appears in the record below?", f"Output the {_word} field of this record.",
             f"{_word.capitalize()} in this record:", f"Copy the {_word} from the record below."])
TEMPLATES.update(TEMPLATES_SHARED)

_UNITS = {
    "zh": [("千米", "米", 1000), ("千克", "克", 1000), ("小时", "分钟", 60), ("分钟", "秒", 60)],
    "en": [("km", "metres", 1000), ("kg", "grams", 1000), ("hours", "minutes", 60), ("minutes", "seconds", 60)],
}
_NAMES = {"zh": ["张伟", "李娜", "王磊", "刘洋", "陈静", "赵敏"], "en": ["Alice", "Ben", "Chloe", "Daniel", "Emma", "Felix"]}
_CITIES = {"zh": ["北京", "上海", "杭州", "成都", "西安", "武汉"], "en": ["London", "Toronto", "Sydney", "Berlin", "Chicago", "Dublin"]}
_FIELDS = {"zh": {"age": "年龄", "city": "城市"}, "en": {"age": "age", "city": "city"}}
_SENTIMENT_WORDS = {
    ("zh", "positive"): ["质量很好", "物流很快", "非常满意", "推荐购买", "服务周到", "性价比高"],
    ("zh", "negative"): ["质量很差", "物流太慢", "非常失望", "不推荐", "服务冷淡", "价格虚高"],
    ("en", "positive"): ["great quality", "fast delivery", "very happy", "would recommend", "friendly staff", "good value"],
    ("en", "negative"): ["poor quality", "slow delivery", "very disappointed", "would not recommend", "rude staff", "overpriced"],
}
_SENTIMENT_LABELS = {"zh": {"positive": "正面", "negative": "负面"}, "en": {"positive": "positive", "negative": "negative"}}


def _letters(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 6)))


def sample_family_params(family: str, lang: str, rng: random.Random) -> dict:
    """Parameters of one shared input: every task of ``family`` can be asked about them."""
    if family == "string":
        s = _letters(rng)
        # Half the time a letter of the string, else one it lacks: "contains" is yes half the time.
        c = rng.choice(s) if rng.random() < 0.5 else rng.choice(sorted(set(string.ascii_lowercase) - set(s)))
        return {"s": s, "c": c}
    if family == "quantity":
        # n is a whole number of the larger unit, so both directions give whole numbers.
        return {"unit": rng.randrange(len(_UNITS[lang])), "k": rng.randint(1, 30)}
    if family == "record":
        return {"name": rng.choice(_NAMES[lang]), "age": rng.randint(18, 80), "city": rng.choice(_CITIES[lang])}
    raise ValueError(f"unknown task family {family!r}; known: {sorted(FAMILIES)}")


def sample_params(task: str, lang: str, rng: random.Random) -> dict:
    """Draw the random parameters that fully determine one task instance."""
    if task in FAMILY_OF and task != "count":
        return sample_family_params(FAMILY_OF[task], lang, rng)
    if task == "add":
        return {"a": rng.randint(0, 99), "b": rng.randint(0, 99)}
    if task in ("reverse", "upper", "count"):
        return {"s": _letters(rng)}
    if task == "unit":
        return {"unit": rng.randrange(len(_UNITS[lang])), "n": rng.randint(1, 20)}
    if task == "date":
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 365))
        return {"date": start.isoformat(), "k": rng.randint(1, 10)}
    if task == "extract":
        return {"name": rng.choice(_NAMES[lang]), "age": rng.randint(18, 80),
                "city": rng.choice(_CITIES[lang]), "field": rng.choice(["age", "city"])}
    if task == "sentiment":
        polarity = rng.choice(["positive", "negative"])
        return {"polarity": polarity, "phrases": rng.sample(_SENTIMENT_WORDS[(lang, polarity)], 2)}
    raise ValueError(f"unknown task {task!r}; known: {TASKS}")


def render(task: str, lang: str, template: int, params: dict) -> tuple[str, str]:
    """Instruction and input text for one task instance."""
    return render_text(task, lang, TEMPLATES[(task, lang)][template], params)


def render_text(task: str, lang: str, template: str, params: dict) -> tuple[str, str]:
    """Instruction and input text for one task instance, from the template's text (which may be a
    reworded version of one in :data:`TEMPLATES`)."""
    fmt = dict(params)
    if task == "unit":
        src, dst, _ = _UNITS[lang][params["unit"]]
        fmt.update(src=src, dst=dst)
    if task == "extract":
        fmt["field_name"] = _FIELDS[lang][params["field"]]
    instruction = template.format(**fmt)
    if task in ("reverse", "upper", "count") or FAMILY_OF.get(task) == "string":
        return instruction, params["s"]
    if FAMILY_OF.get(task) == "quantity":
        big, small, factor = _UNITS[lang][params["unit"]]
        n = factor * params["k"]
        return instruction, (f"{n}；单位：{big}、{small}" if lang == "zh" else f"{n}; units: {big}, {small}")
    if FAMILY_OF.get(task) == "record":
        task = "extract"
    if task == "extract":
        if lang == "zh":
            return instruction, f"姓名：{params['name']}；年龄：{params['age']}；城市：{params['city']}"
        return instruction, f"Name: {params['name']}; Age: {params['age']}; City: {params['city']}"
    if task == "sentiment":
        sep = "，" if lang == "zh" else ", "
        return instruction, sep.join(params["phrases"])
    return instruction, ""


def solve(task: str, lang: str, params: dict) -> str:
    """The one correct answer, computed from the parameters."""
    if task == "add":
        return str(params["a"] + params["b"])
    if task == "reverse":
        return params["s"][::-1]
    if task == "upper":
        return params["s"].upper()
    if task == "count":
        return str(len(params["s"]))
    if task == "unit":
        return str(params["n"] * _UNITS[lang][params["unit"]][2])
    if task in ("first", "last"):
        return params["s"][0 if task == "first" else -1]
    if task == "contains":
        yes, no = ("是", "否") if lang == "zh" else ("yes", "no")
        return yes if params["c"] in params["s"] else no
    if task in ("to_larger", "to_smaller"):
        factor = _UNITS[lang][params["unit"]][2]
        # The input number is factor * k: read as the smaller unit it is k of the larger one;
        # read as the larger unit it is factor * factor * k of the smaller one.
        return str(params["k"] if task == "to_larger" else factor * factor * params["k"])
    if task in ("name", "age", "city"):
        return str(params[task])
    if task == "date":
        return (dt.date.fromisoformat(params["date"]) + dt.timedelta(days=params["k"])).isoformat()
    if task == "extract":
        return str(params[params["field"]])
    if task == "sentiment":
        return _SENTIMENT_LABELS[lang][params["polarity"]]
    raise ValueError(f"unknown task {task!r}; known: {TASKS}")


def sample_task(rng: random.Random, lang: str | None = None, task: str | None = None,
                templates: tuple[int, ...] = (0, 1, 2)) -> dict:
    """One alpaca-style record (without id) of a random task."""
    lang = lang or rng.choice(["zh", "en"])
    task = task or rng.choice(TASKS)
    template = rng.choice(templates)
    params = sample_params(task, lang, rng)
    instruction, inp = render(task, lang, template, params)
    return {"lang": lang, "task": task, "template_id": f"{task}-{lang}-{template}",
            "instruction": instruction, "input": inp, "output": solve(task, lang, params), "params": params}


def answer(record: dict) -> str:
    """The correct answer of an alpaca-style record (params may be a dict or its JSON text)."""
    params = record["params"]
    return solve(record["task"], record["lang"], json.loads(params) if isinstance(params, str) else params)


def is_correct(record: dict, prediction: str) -> bool:
    """Exact match after trimming surrounding whitespace: the metric the SFT lessons use."""
    return prediction.strip() == answer(record)
