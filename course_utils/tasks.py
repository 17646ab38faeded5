"""Verifiable instruction tasks: each answer is computed from the task's parameters.

Because a program knows the right answer, a later lesson can measure exact-match
accuracy of a model before and after SFT, with no human grader.  Every task has three
phrasings (templates) per language, so train and test can be split by template.
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


def sample_params(task: str, lang: str, rng: random.Random) -> dict:
    """Draw the random parameters that fully determine one task instance."""
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
    if task in ("reverse", "upper", "count"):
        return instruction, params["s"]
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
