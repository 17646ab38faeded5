"""course_utils.train_classifier: cleaning, stratified splits, batching, prediction order."""

from collections import Counter

import pytest
import torch

from course_utils.data import LABELS, load_records
from course_utils import train_classifier as tc


@pytest.fixture(scope="module")
def tokenizer():
    from course_utils.course_tokenizer import load_course_tokenizer
    return load_course_tokenizer()


@pytest.fixture(scope="module")
def splits():
    return tc.news_splits("en", seed=0)


def test_clean_news_keeps_base_rows_and_mislabeled_ones():
    records = load_records("news_cls")
    cleaned = tc.clean_news(records)
    # The datasheet: 1,200 base rows (some relabelled wrongly), 234 added messy copies.
    assert len(cleaned) == 1200
    assert sum("mislabeled" in r["flags"] for r in cleaned) == sum("mislabeled" in r["flags"] for r in records) == 36
    assert all(set(r["flags"]) <= {"mislabeled"} for r in cleaned)
    assert len({r["text"] for r in cleaned}) == len(cleaned)        # no duplicates left


def test_splits_are_disjoint_by_template_and_keep_noise_in_train(splits):
    ids = {name: set(split["id"]) for name, split in splits.items()}
    assert not (ids["train"] & ids["validation"] or ids["train"] & ids["test"] or ids["validation"] & ids["test"])
    templates = {name: set(split["template_id"]) for name, split in splits.items()}
    assert not (templates["train"] & templates["test"] or templates["train"] & templates["validation"])
    assert sum(splits["validation"]["mislabeled"]) == sum(splits["test"]["mislabeled"]) == 0
    planted = sum(r["lang"] == "en" and "mislabeled" in r["flags"] for r in load_records("news_cls"))
    in_held_out = sum(r["lang"] == "en" and "mislabeled" in r["flags"] and r["template_id"] not in templates["train"]
                      for r in load_records("news_cls"))
    assert sum(splits["train"]["mislabeled"]) == planted - in_held_out > 0
    # 4 topics x (6 + 2 ordinary/ambiguous templates in train, 4 + 1 in test), by largest remainder
    assert len(templates["train"]) == 4 * 8 and len(templates["test"]) == 4 * 5
    assert Counter(splits["test"]["label"]).keys() == set(range(4))


def test_random_split_is_stratified_by_label():
    parts = tc.news_splits("en", val_size=0.15, test_size=0.2, seed=0, by="random")
    trusted = Counter(label for split in parts.values() for label, bad in zip(split["label"], split["mislabeled"]) if not bad)
    test_counts = Counter(parts["test"]["label"])
    for label, total in trusted.items():     # 20% of each class, within rounding
        assert abs(test_counts[label] - 0.2 * total) <= 1


def test_defaults_follow_the_model():
    from types import SimpleNamespace
    assert tc.defaults_for(SimpleNamespace(source="hub")) == ("zh", 3e-5)
    assert tc.defaults_for(SimpleNamespace(source="package")) == ("en", 1e-4)
    assert tc.defaults_for(SimpleNamespace(source="hub"), "all", 5e-5) == (None, 5e-5)


def test_tnews_splits_map_codes_to_names_and_test_on_validation():
    import datasets
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["100", "103"]),
                                  "idx": datasets.Value("int32")})
    train = datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(50)], "label": [i % 2 for i in range(50)],
                                        "idx": list(range(50))}, features=features)
    val = datasets.Dataset.from_dict({"sentence": ["v0", "v1"], "label": [1, 0], "idx": [0, 1]}, features=features)
    parts = tc.tnews_splits(train, val, train_rows=30)
    assert parts["train"].features["label"].names == ["news_story", "news_sports"]
    assert (len(parts["train"]), len(parts["validation"]), parts["test"]["text"]) == (30, 6, ["v0", "v1"])
    assert not set(parts["train"]["text"]) & set(parts["validation"]["text"])


def test_tokenize_splits_matches_the_tokenizer(splits, tokenizer):
    tokenized = tc.tokenize_splits(splits, tokenizer, max_length=16)
    row = tokenized["train"][3]
    expected = tokenizer(splits["train"][3]["text"], truncation=True, max_length=16)["input_ids"]
    assert row["input_ids"] == expected and row["length"] == len(expected) <= 16
    assert row["labels"] == splits["train"][3]["label"]


def test_batch_padding_fraction_hand_checked():
    lengths = [2, 4, 3]
    # batch [0, 1] padded to 4 (8 positions, 6 real), batch [2] to 3 (3 real): 1 - 9/11
    assert tc.batch_padding_fraction(lengths, [[0, 1], [2]]) == pytest.approx(2 / 11)
    assert tc.batch_padding_fraction(lengths, [[0, 1], [2]], pad_to=5) == pytest.approx(1 - 9 / 15)


def test_loaders_pad_dynamically_and_grouping_reduces_padding(splits, tokenizer):
    tokenized = tc.tokenize_splits(splits, tokenizer)["train"]

    def padding(loader):
        real = total = 0
        for batch in loader:
            assert batch["attention_mask"].sum(dim=1).max() == batch["input_ids"].size(1)   # padded to its longest row
            real += int(batch["attention_mask"].sum())
            total += batch["input_ids"].numel()
        return 1 - real / total

    torch.manual_seed(0)
    grouped = padding(tc.make_loader(tokenized, tokenizer, 16))
    random = padding(tc.make_loader(tokenized, tokenizer, 16, group_by_length=False))
    assert grouped < random / 2
    fixed = next(iter(tc.make_loader(tokenized, tokenizer, 16, group_by_length=False, pad_to=64)))
    assert fixed["input_ids"].shape == (16, 64)


def test_predict_keeps_dataset_order_and_losses_are_per_row(splits, tokenizer):
    from transformers import AutoModelForSequenceClassification
    from course_utils.models import small_encoder_config
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(
        small_encoder_config(len(tokenizer), LABELS, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, pad_token_id=tokenizer.pad_token_id)).eval()
    data = tc.tokenize_splits(splits, tokenizer)["validation"].select(range(20))
    logits = tc.predict(model, data, tokenizer, batch_size=8)
    with torch.no_grad():
        one_by_one = torch.cat([model(input_ids=torch.tensor([row["input_ids"]])).logits for row in data])
    torch.testing.assert_close(logits, one_by_one, rtol=1e-4, atol=1e-5)
    labels = list(data["labels"])
    losses = tc.per_example_losses(logits, labels)
    expected = torch.stack([torch.nn.functional.cross_entropy(logits[i:i + 1], torch.tensor([labels[i]])) for i in range(20)])
    torch.testing.assert_close(losses, expected)
    report = tc.evaluate(model, data, tokenizer)
    assert report["loss"] == pytest.approx(float(losses.mean()), rel=1e-5)


def test_exercise_checks(capsys):
    tc.check_fixed_padding_fraction(1 - 9 / 15, [2, 4, 3], 5)
    tc.check_fixed_padding_fraction(0.5, [2, 4, 3], 5)
    tc.check_mislabeled_precision_at_k(0.5, [0.9, 0.1, 0.8, 0.2], [True, False, False, True], 2)
    lines = capsys.readouterr().out.splitlines()
    assert [line[0] for line in lines] == ["✅", "❌", "✅"]
