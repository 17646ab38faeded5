"""The misconceptions index (常见误区索引): one source of truth for MISCONCEPTIONS.md and the tags in the notebooks.

Each row of :data:`ROWS` is one error found in the seed documents (``../shared/seeds/``): the wrong belief,
paraphrased, the truth, the seed file it came from, and the notebook cell that disproves it by computation.
That cell is found by an *anchor*: a substring of a cell's source that occurs in exactly one cell of all the
notebooks (so a row follows its cell when the cell moves to another notebook).

- ``anchor`` only: the anchor cell already disproves the belief; it gets the tag ``misconception:Mxx``.
- ``new``: a "Common misconception" markdown cell and a tagged code cell are inserted right after the anchor
  cell (after any cells this script inserted there before).

Run::

    .venv/bin/python tools/apply_misconceptions.py [NOTEBOOK_DIR]       # default: notebooks/

It is idempotent: a tag already present anywhere is not added again.  It never executes a notebook: after
applying, regenerate the touched notebooks with ``python -m course_utils.notebooks`` so that the new cells get
stored outputs.  It then rewrites MISCONCEPTIONS.md from the rows (only when NOTEBOOK_DIR is the repository's
own notebooks/ folder, or with ``--index PATH``).  Exit status 1 when an anchor is missing or not unique.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from course_utils.notebooks import COURSE_REF, COURSE_REPO, repo_url  # noqa: E402

TAG = "misconception:{}"
NOTE_TAG = "misconception-note:{}"       # the markdown box of a new cell pair
NEW_TAG = "misconception-new"            # marks code cells this script inserted

S0, S1, S2, S3, S4 = (
    "000_5379e7ded6e7b255.txt",
    "001_5f1c705cd411deef.txt",
    "002_91b518635c7e804c.txt",
    "003_ae5c51a2acc19835.txt",
    "004_5ed41f14afa71575.txt",
)

# Categories used in the index: formula, worked numbers, API/code, data & evaluation, fact.
ROWS: list[dict] = [
    dict(id="M01", seeds=[S0], category="fact",
         belief="In UTF-8 a Chinese character is a double-byte character (双字节字符).",
         truth="In UTF-8 a common Chinese character takes 3 bytes and one outside the BMP takes 4; two bytes is GBK or UTF-16.",
         anchor=('for text in ["中", "𠀀", "👨‍👩‍👧"]:', "tz.encoded_lengths(text)")),
    dict(id="M02", seeds=[S0], category="data & evaluation",
         belief="English needs no word segmentation (切词): splitting on spaces already gives the words.",
         truth="Whitespace pieces keep punctuation glued to words (`shares,` `Monday.`), which inflates the vocabulary; a word tokenizer splits it off.",
         anchor=("split_vocab = Counter(w for t in english for w in t.split())", "nltk_vocab = Counter(")),
    dict(id="M03", seeds=[S0], category="fact",
         belief="BERT takes up to 512 words, so texts are limited or padded to 512 words (单词).",
         truth="The limit is 512 positions of subword tokens (词元), `[CLS]` and `[SEP]` included; an English text of 512 words is far more than 512 tokens.",
         anchor=('unit = "words" if LANG == "en" else "characters"', 'long_zh = "，".join(clean["zh"][:40])')),
    dict(id="M04", seeds=[S0], category="data & evaluation",
         belief="Every example should be padded (填充) to a fixed length, usually 512.",
         truth="With the attention mask the loss is the same for any padding; padding to the batch's longest row gives the same loss at a fraction of the positions.",
         anchor=("for pad_to in (None, 512):", 'print("same logits:", torch.allclose(dynamic, fixed')),
    dict(id="M05", seeds=[S0], category="data & evaluation",
         belief="The label sequence must be as long as the input text (e.g. 512 labels for 512 input units).",
         truth="A sequence-level (classification) label is one class id per text, whatever the text's length; only token-level tasks have one label per token.",
         anchor="hot = labels.one_hot(ids, len(LABELS))",
         new=dict(
             title='"The labels must be as long as the input." / 「标签长度必须等于输入长度」',
             text="For a sequence-level task (序列级标签) such as news classification the target is **one class id per text**. "
                  "Only token-level tasks (NER, causal-LM labels) have one label per token. The cell tokenises two headlines "
                  "and puts their input and label tensors side by side.",
             code='''import torch
from course_utils.course_tokenizer import load_course_tokenizer

tok = load_course_tokenizer()
texts = ["Cedar Bank posts annual profit of 12 billion", "华星科技发布新款智能手机"]
batch = tok(texts, padding=True, return_tensors="pt")
class_ids = torch.tensor([1, 2])                       # finance, tech: one id per headline
print("input_ids shape:", tuple(batch["input_ids"].shape), "  labels shape:", tuple(class_ids.shape))
print("labels as long as the input:", class_ids.shape == batch["input_ids"].shape)''')),
    dict(id="M06", seeds=[S0], category="API/code",
         belief="scikit-learn's `LabelEncoder` turns class labels into one-hot vectors (独热编码).",
         truth="`LabelEncoder` maps each class name to one integer id (classes sorted alphabetically); one-hot is a separate step, and integer ids are what `sparse_categorical_crossentropy` and `F.cross_entropy` expect.",
         anchor="hot = labels.one_hot(ids, len(LABELS))",
         new=dict(
             title='"`LabelEncoder` gives one-hot labels." / 「LabelEncoder 输出独热编码」',
             text="`LabelEncoder` returns **integer ids** (整数编码), one number per example, with the classes sorted alphabetically. "
                  "One-hot vectors are a different, 2-D target.",
             code='''import torch
from sklearn.preprocessing import LabelEncoder

names = ["finance", "sports", "tech", "finance", "entertainment"]
encoder = LabelEncoder()
encoded = encoder.fit_transform(names)
print("classes_:", encoder.classes_.tolist())
print("LabelEncoder output:", encoded.tolist(), " ndim:", encoded.ndim)
print("one-hot of the same ids:", torch.nn.functional.one_hot(torch.as_tensor(encoded)).tolist())
print("LabelEncoder output is one-hot:", encoded.ndim == 2)''')),
    dict(id="M07", seeds=[S0], category="fact",
         belief="Multi-head attention (多头注意力) cuts the input sequence into sub-sequences and attends within each.",
         truth="Every head sees all positions of the sequence; the heads split the model width (feature dimension) into slices of size d_model / heads.",
         anchor="heads = A.split_heads(x_batch, num_heads=2)"),
    dict(id="M08", seeds=[S0], category="fact",
         belief="The Transformer/BERT encoder compresses the input into one fixed-length vector.",
         truth="The encoder returns one vector per token, shape (batch, seq_len, hidden), so its output grows with the input; a single vector ([CLS] or pooled) is a choice made on top.",
         anchor="heads = A.split_heads(x_batch, num_heads=2)",
         new=dict(
             title='"The encoder turns the input into one fixed-length vector." / 「编码器把输入压成一个定长向量」',
             text="A Transformer encoder keeps **one output vector per token**. The cell runs a tiny, randomly initialised "
                  "`BertModel` (built from a config, no download) on inputs of two lengths.",
             code='''import torch
from transformers import BertConfig, BertModel

with torch.random.fork_rng():                      # the notebook's random stream stays as it was
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32)).eval()
with torch.no_grad():
    for n in (5, 9):
        out = encoder(input_ids=torch.arange(1, n + 1)[None])
        print(f"{n} tokens in -> last_hidden_state {tuple(out.last_hidden_state.shape)}, pooler_output {tuple(out.pooler_output.shape)}")''')),
    dict(id="M09", seeds=[S0], category="formula",
         belief="For binary labels (0 or 1) the cross-entropy is −Σ y·log ŷ over the examples.",
         truth="That sum drops every negative example (y = 0); binary cross-entropy needs the second term −(1−y)·log(1−ŷ), or a model that says 1 everywhere scores almost 0.",
         anchor="grid = torch.linspace(0.001, 0.999, 999)",
         new=dict(
             title='"Binary cross-entropy is −Σ y log ŷ." / 「二元交叉熵就是 −Σ y log ŷ」',
             text="With labels 0/1, the term y·log ŷ is zero for every negative example. Take a useless model that says "
                  "ŷ = 0.999 for every example: the one-term formula calls it nearly perfect.",
             code='''import torch
import torch.nn.functional as F

y = torch.tensor([1.0, 0.0, 0.0, 0.0])               # one positive, three negatives
y_hat = torch.full((4,), 0.999)                      # "positive" for everything
one_term = -(y * torch.log(y_hat)).sum()
full = F.binary_cross_entropy(y_hat, y, reduction="sum")
print(f"-sum y log y_hat: {one_term.item():.4f}   binary cross-entropy: {full.item():.4f}")''')),
    dict(id="M10", seeds=[S0], category="formula",
         belief="Log loss (对数损失) is a separate loss, the 'logarithmic form' of cross-entropy.",
         truth="Log loss and cross-entropy are the same quantity: scikit-learn's `log_loss` equals PyTorch's mean binary (or categorical) cross-entropy.",
         anchor="grid = torch.linspace(0.001, 0.999, 999)",
         new=dict(
             title='"Log loss is the logarithmic form of cross-entropy." / 「对数损失是交叉熵的对数形式」',
             text="Log loss is another name for cross-entropy, not a variant of it. scikit-learn and PyTorch give the same numbers:",
             code='''import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss

y_true = [1, 0, 1, 1, 0]
p = [0.8, 0.3, 0.6, 0.9, 0.1]
print(f"binary:      sklearn log_loss {log_loss(y_true, p):.4f}   torch BCE {F.binary_cross_entropy(torch.tensor(p, dtype=torch.float64), torch.tensor(y_true, dtype=torch.float64)).item():.4f}")
probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], dtype=torch.float64)
classes = [0, 2, 1]
print(f"multi-class: sklearn log_loss {log_loss(classes, probs.numpy()):.4f}   torch CE {F.nll_loss(probs.log(), torch.tensor(classes)).item():.4f}")''')),
    dict(id="M11", seeds=[S0], category="formula",
         belief="Mean squared error (均方误差) is the loss for sequence tasks.",
         truth="Sequence labelling and language modelling predict a class (tag or token id) at each position and use cross-entropy; MSE on ids picks in-between ids that are never right.",
         anchor="# 1) A token that is B-PER half of the time"),
    dict(id="M12", seeds=[S0], category="worked numbers",
         belief="For y = 1 and ŷ = 0.8 the binary cross-entropy is −0.2231.",
         truth="It is +0.2231: −log 0.8 > 0, and a cross-entropy loss is never negative.",
         anchor=("p = torch.tensor(0.8, requires_grad=True)", 'print(f"L(p=0.8, y=1)')),
    dict(id="M13", seeds=[S0], category="worked numbers",
         belief="At y = 1, ŷ = 0.8 the derivative of the BCE with respect to ŷ is 0.5.",
         truth="dL/dŷ = −y/ŷ + (1−y)/(1−ŷ) = −1/0.8 = −1.25: negative, since raising the right answer's probability lowers the loss.",
         anchor="formula = L.bce_grad_wrt_prob(0.8, 1.0)"),
    dict(id="M14", seeds=[S0], category="worked numbers",
         belief="The gradient with respect to the predicted probability can be used directly to update the model parameter.",
         truth="Parameters reach the loss through the logit z (ŷ = σ(z)); by the chain rule dL/dz = ŷ − y = −0.2, and a descent step raises z and ŷ.",
         anchor="z = torch.logit(torch.tensor(0.8)).requires_grad_()"),
    dict(id="M15", seeds=[S0], category="formula",
         belief="Momentum (动量) updates θ ← θ − α·g + β·θ.",
         truth="Momentum keeps a velocity of past gradients: b ← μb + g, θ ← θ − αb. Adding β·θ instead scales the weights by (1+β) every step, even with a zero gradient, and diverges.",
         anchor='("moving average (dampening=0.9)"',
         new=dict(
             title='"Momentum adds β·θ to the update." / 「动量就是在更新中加上 β·θ」',
             text="Some write-ups give momentum as θ ← θ − α·g + β·θ. Run it beside `torch.optim.SGD(momentum=0.9)` on "
                  "L(θ) = θ²/2 (gradient θ), and with a zero gradient:",
             code='''import torch

def seed_rule(theta, grad_fn, lr=0.1, beta=0.9, steps=20):
    for _ in range(steps):
        theta = theta - lr * grad_fn(theta) + beta * theta
    return theta

w = torch.tensor([1.0], requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
for _ in range(20):
    opt.zero_grad()
    (0.5 * w ** 2).sum().backward()
    opt.step()
print(f"L = θ²/2 from θ = 1, 20 steps: torch SGD momentum θ = {w.item():+.4f}   'θ - αg + βθ' θ = {seed_rule(1.0, lambda t: t):+.4f}")
print(f"zero gradient, 20 steps:       torch SGD momentum θ = {1.0:+.4f}   'θ - αg + βθ' θ = {seed_rule(1.0, lambda t: 0.0):+.4f}")''')),
    dict(id="M16", seeds=[S0], category="formula",
         belief="Adam updates θ ← θ − αβ₁g_t + (1−β₂)θ_t − αβ₂g_{t−1}.",
         truth="Adam keeps moving averages m (of g) and v (of g²), bias-corrects both and steps θ ← θ − α·m̂/(√v̂ + ε); it never adds a multiple of θ, so a zero gradient leaves θ unchanged.",
         anchor='"no bias correction": dict(bias_correction=False)',
         new=dict(
             title='two "Adam" formulas from tutorials / 教程里的两个错误 Adam 公式',
             tags=["M16", "M17"],
             text="Two formulas printed as Adam: (a) θ ← θ − αβ₁g_t + (1−β₂)θ_t − αβ₂g_{t−1}, and (b) θ ← θ − α·g/√(1−β₁ᵗ). "
                  "Real Adam divides by the running size of the gradient, so its first step is about α whatever the "
                  "gradient's scale, and a zero gradient does not move θ. Compare each with `torch.optim.Adam`:",
             code='''import torch

lr, beta1, beta2 = 0.1, 0.9, 0.999

def torch_adam_first_step(theta0, g):
    w = torch.tensor([theta0], requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr, betas=(beta1, beta2))
    w.grad = torch.tensor([g])
    opt.step()
    return w.item() - theta0

for g in (0.5, 500.0):
    formula_b = -lr * g / (1 - beta1 ** 1) ** 0.5
    print(f"gradient {g:>6}: torch Adam step {torch_adam_first_step(2.0, g):+.4f}   formula (b) step {formula_b:+.4f}")
theta = 2.0
formula_a = -lr * beta1 * 0.0 + (1 - beta2) * theta - lr * beta2 * 0.0   # zero gradient now and before
print(f"zero gradient at θ = 2: torch Adam step {torch_adam_first_step(theta, 0.0):+.4f}   formula (a) step {formula_a:+.4f}")''')),
    dict(id="M17", seeds=[S1], category="formula",
         belief="Adam is θ ← θ − α·∇J/√(1−β₁ᵗ) (a bias-corrected gradient step).",
         truth="Without the second moment the step grows with the gradient (×1000 for a 1000× larger gradient); Adam's step, α·m̂/(√v̂+ε), is about α whatever the scale, and the bias correction of m is 1/(1−β₁ᵗ), not its square root.",
         anchor='"no bias correction": dict(bias_correction=False)'),
    dict(id="M18", seeds=[S0], category="formula",
         belief="Adam's second moment (二阶矩) is the variance of the gradient.",
         truth="It is the uncentred second moment, a moving average of g²: under a constant gradient g the variance is 0 but v̂ → g².",
         anchor="first = O.HandAdam(start.clone(), lr=0.5)",
         new=dict(
             title='"Adam\'s second moment is the variance." / 「Adam 的二阶矩就是方差」',
             text="Adam's $v$ averages $g^2$, not $(g - \\bar g)^2$. Give `torch.optim.Adam` the same gradient 3.0 for "
                  "2000 steps and read its buffer `exp_avg_sq`:",
             code='''import torch

w = torch.zeros(1, requires_grad=True)
opt = torch.optim.Adam([w], lr=1e-3)
steps = 2000
for _ in range(steps):
    w.grad = torch.tensor([3.0])
    opt.step()
v_hat = opt.state[w]["exp_avg_sq"].item() / (1 - 0.999 ** steps)
grads = torch.full((steps,), 3.0)
print(f"bias-corrected v = {v_hat:.4f};  g² = {3.0 ** 2:.4f};  variance of the gradients = {grads.var().item():.4f}")''')),
    dict(id="M19", seeds=[S0], category="API/code",
         belief="`tokenizer.encode_plus(X_train, ...)` encodes a whole training set (here Iris's numeric feature matrix), and its output carries a `labels` field to train on.",
         truth="A tokenizer takes text (a string, or a list of strings called directly as `tokenizer(texts)`); it rejects numbers, returns `input_ids`/`attention_mask` but never `labels`, and in the installed transformers 5 `encode_plus` no longer exists.",
         anchor=("print(type(course_tok).__name__, len(course_tok), course_tok.all_special_tokens)",
                 "## 4. Real tokenizer APIs"),
         new=dict(
             title='"`encode_plus(X_train)` tokenises a dataset and returns its labels." / 「encode_plus 能处理整个数据集并返回标签」',
             text="A tokenizer turns **text** into ids. Call it on a list of strings for a batch. It does not know your labels, "
                  "and it refuses numeric features. (`encode_plus` was removed from transformers 5; call the tokenizer.)",
             code='''from course_utils.course_tokenizer import load_course_tokenizer

tok = load_course_tokenizer()
print("has encode_plus:", hasattr(tok, "encode_plus"))
enc = tok(["这是一条体育新闻。", "Cedar Bank posts annual profit"])
print("keys:", sorted(enc.keys()), "| 'labels' in the output:", "labels" in enc)
try:
    tok([[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]])       # two rows of Iris measurements
except ValueError as err:
    print("numeric features:", type(err).__name__, "-", str(err).split(",")[0])''')),
    dict(id="M20", seeds=[S0], category="API/code",
         belief="`sparse_categorical_crossentropy` (softmax cross-entropy over integer ids) suits multi-label (多标签) classification.",
         truth="Softmax makes the classes compete for one unit of probability, so it is for multi-class (多分类) with one id per example; multi-label needs a sigmoid BCE per label on multi-hot targets.",
         anchor="# Train free logits for this one headline with each loss"),
    dict(id="M21", seeds=[S0], category="worked numbers",
         belief="A 20% test split of Iris (150 rows) gave a test accuracy of 0.8461538 (84.6%).",
         truth="The split has 30 rows, so accuracy is k/30; 0.8461538 is 11/13 and cannot occur (the nearest possible values are 25/30 and 26/30).",
         anchor='print("possible accuracies with 3 examples:"',
         new=dict(
             title='"84.6% accuracy on a 20% test split of Iris." / 「鸢尾花 20% 测试集上准确率 84.6%」',
             text="Accuracy on n items is always k/n. Check a reported number against the size of the set it was measured on:",
             code='''from fractions import Fraction

from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True)
_, X_test, _, _ = train_test_split(X, y, test_size=0.2, random_state=42)
n, claimed = len(X_test), 0.8461538461538461
print(f"test rows: {n}; claimed accuracy = {Fraction(claimed).limit_denominator(100)}")
print("a possible accuracy on", n, "rows:", any(abs(k / n - claimed) < 1e-9 for k in range(n + 1)))
print("nearest possible:", [f"{k}/{n} = {k / n:.4f}" for k in range(n + 1) if abs(k / n - claimed) < 1 / n])''')),
    dict(id="M22", seeds=[S0], category="data & evaluation",
         belief="When a model scores well on validation but badly on test, it has memorised the validation samples, and regularisation or more training data is the fix.",
         truth="The model never trains on validation data; the gap comes from choosing models, checkpoints or hyperparameters by their validation score (or from a shift between the sets). Choosing the best of many on a small validation set inflates its score even for models that learned nothing.",
         anchor="## 7. Evaluation on the test set, once",
         new=dict(
             title='"Good on validation, bad on test: the model memorised the validation set." / 「验证集好、测试集差，是模型记住了验证集」',
             text="A model never sees the validation labels during training. What does see them is **model selection**. "
                  "Here 500 models guess at random (they know nothing). Keep the one with the best validation score:",
             code='''import numpy as np

rng = np.random.default_rng(0)
classes, n_val, n_test, n_models = 4, 60, 2000, 500
val_y, test_y = rng.integers(0, classes, n_val), rng.integers(0, classes, n_test)
val_acc = np.array([(rng.integers(0, classes, n_val) == val_y).mean() for _ in range(n_models)])
best_test = (rng.integers(0, classes, n_test) == test_y).mean()   # the chosen model still guesses on test
print(f"chance: {1 / classes:.3f}   best validation accuracy of {n_models} guessers: {val_acc.max():.3f}   "
      f"that model on the test set: {best_test:.3f}")''')),
    dict(id="M23", seeds=[S1, S4], category="API/code",
         belief="`BertModel` can be trained as a classifier: its output has `.loss` and `.logits`.",
         truth="`BertModel` is the bare encoder: it returns `last_hidden_state` and `pooler_output`, with no classification head, no logits and no loss; use `BertForSequenceClassification` (or add a head and a loss).",
         anchor="## 4. The training loop",
         new=dict(
             title='"`BertModel` returns a loss and logits." / 「BertModel 会返回 loss 和 logits」',
             tags=["M23", "M24"],
             text="Two bugs in tutorial training loops: training the bare `BertModel`, which has no classification head, and "
                  "calling a `...ForSequenceClassification` model without `labels`, which returns no loss. A tiny model "
                  "built from a config (no download) shows what each returns:",
             code='''import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

tiny = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, num_labels=4)
ids = torch.tensor([[2, 17, 33, 3]])
with torch.random.fork_rng():                      # the notebook's random stream stays as it was
    torch.manual_seed(0)
    bare_encoder, classifier = BertModel(tiny).eval(), BertForSequenceClassification(tiny).eval()   # eval: no dropout
bare = bare_encoder(input_ids=ids)
print("BertModel output:", list(bare.keys()), "| has logits:", hasattr(bare, "logits"), "| has loss:", hasattr(bare, "loss"))
print("ForSequenceClassification, no labels:  ", list(classifier(input_ids=ids).keys()), "loss =", classifier(input_ids=ids).loss)
print("ForSequenceClassification, with labels:", list(classifier(input_ids=ids, labels=torch.tensor([1])).keys()))''')),
    dict(id="M24", seeds=[S3], category="API/code",
         belief="Calling `BertForSequenceClassification` / `BertForTokenClassification` on the inputs alone gives a loss to back-propagate.",
         truth="The model computes a loss only when `labels` are passed; without them `outputs.loss` is `None` and `loss.backward()` fails.",
         anchor="## 4. The training loop"),
    dict(id="M25", seeds=[S1], category="API/code",
         belief="Calling the BERT tokenizer also removes stop words (去停用词).",
         truth="A tokenizer removes no stop words: 的/是/一 and 'is'/'of' all become tokens (the course tokenizer even decodes back to the exact text). Stop-word removal would be a separate, deliberate step, and is rarely wanted for BERT.",
         anchor=("print(type(course_tok).__name__, len(course_tok), course_tok.all_special_tokens)",
                 "## 4. Real tokenizer APIs"),
         new=dict(
             title='"The tokenizer removes stop words." / 「分词器会去掉停用词」',
             text="A model's tokenizer (分词器) is lossless on ordinary text. Encode a sentence full of function words and "
                  "decode it again:",
             code='''from course_utils.course_tokenizer import load_course_tokenizer

tok = load_course_tokenizer()
for text in ["这是一条政治新闻。", "This is a piece of the news."]:
    ids = tok(text)["input_ids"]
    back = tok.decode(ids)
    print(f"{text!r}: {len(ids)} tokens, decoded back {back!r}, identical: {back == text}")''')),
    dict(id="M26", seeds=[S1], category="worked numbers",
         belief="Validation accuracy on three validation examples rose 0.5 → 0.75 → 1.0 over the epochs.",
         truth="With 3 examples accuracy can only be 0, 1/3, 2/3 or 1, so 0.5 and 0.75 cannot occur; and 3/3 correct still has a 95% interval reaching down to 0.44.",
         anchor='print("possible accuracies with 3 examples:"'),
    dict(id="M27", seeds=[S1], category="data & evaluation",
         belief="A validation set made of the training sentences in a different order measures how well fine-tuning worked.",
         truth="A score on seen sentences measures memory, not generalisation (泛化); validation and test texts must not overlap the training texts, duplicates included.",
         anchor="leaky = news_splits("),
    dict(id="M28", seeds=[S4], category="formula",
         belief="F1 is the harmonic mean of accuracy and recall.",
         truth="F1 = 2PR/(P+R) is the harmonic mean of precision (精确率) and recall (召回率), computed per class.",
         anchor="wrong = 2 * accuracy * r / (accuracy + r)"),
    dict(id="M29", seeds=[S4], category="worked numbers",
         belief="For Q = K = V = [0.1 … 0.5] with d_k = 1, softmax gives weights [0.5, 0.3, 0.2, 0, 0], and weights × V gives [0.3, 0.2, 0.15, 0.1, 0].",
         truth="Softmax weights are never exactly 0 for finite scores (here they are close to uniform, about 0.2 each), and weights · V is a weighted sum of value vectors: one output vector per query, not the list printed.",
         anchor='print("weights shape:", tuple(steps.weights.shape)',
         new=dict(
             title='a worked attention example with zero weights / 一个权重为零的注意力算例',
             text="A tutorial example takes five tokens with one-number vectors 0.1 … 0.5 as Q, K and V, d_k = 1, and reports "
                  "softmax weights 0.5, 0.3, 0.2, 0, 0. Compute them:",
             code='''import torch

x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])[:, None]          # 5 tokens, d_k = d_v = 1; Q = K = V = x
weights = torch.softmax(x @ x.T / 1 ** 0.5, dim=-1)
print("weights of token 0:", [f"{w:.4f}" for w in weights[0].tolist()])
print(f"smallest weight anywhere: {weights.min().item():.4f} (> 0: {bool((weights > 0).all())})")
print("output shape:", tuple((weights @ x).shape), "| [0.5, 0.3, 0.2, 0, 0] · V =",
      f"{(torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0]) @ x[:, 0]).item():.4f}, one number, not a list")''')),
    dict(id="M30", seeds=[S4], category="fact",
         belief="The attention output says how important each word is in the sentence (one importance score per word).",
         truth="Attention gives a weight matrix, one distribution over the keys for every query token, and a new vector for every token, as wide as the values.",
         anchor='print("weights shape:", tuple(steps.weights.shape)'),
    dict(id="M31", seeds=[S2], category="fact",
         belief="A model built from fresh layers (`Embedding` + `LSTM` + `Dense`) is a pre-trained model being fine-tuned.",
         truth="Layers created in code start from random weights: that is training from scratch. Fine-tuning starts from pretrained weights, and on the same data and steps the difference is large.",
         anchor="scratch = random_init_like(resolved).model"),
    dict(id="M32", seeds=[S4], category="API/code",
         belief="Padding can be done by assigning each token list into one slot of a 1-D tensor and building the mask the same way.",
         truth="A padded batch is a 2-D (batch, max_len) tensor; the tokenizer (`padding=...`) or a collator pads the ids and sets the attention mask (注意力掩码) to 1 on real tokens and 0 on padding.",
         anchor='for kwargs in [dict(padding=True), dict(padding="max_length", max_length=16)'),
    dict(id="M33", seeds=[S0], category="data & evaluation",
         belief="Cross-validation (交叉验证) is for larger data sets.",
         truth="k-fold cross-validation matters most for small data, where one hold-out split is noisy; on large data one held-out split already gives a stable estimate.",
         anchor=("fold_acc = [sc.accuracy(dev_y[val_idx], proba[val_idx].argmax(1)) for _, val_idx in folds]",
                 "folds = splits.kfold_indices("),
         new=dict(
             title='"Cross-validation is for large data sets." / 「交叉验证适用于大数据集」',
             text="How much does one hold-out score vary with the split? Take a classifier that is right 70% of the time "
                  "and score it on 200 random hold-out sets of each size:",
             code='''import numpy as np

rng = np.random.default_rng(0)
for n in (50, 5000):
    accs = rng.binomial(n, 0.7, size=200) / n
    print(f"hold-out of {n:>4} rows: accuracy ranges {accs.min():.3f} to {accs.max():.3f} (std {accs.std():.4f})")''')),
]

ROWS += [
    dict(id="M34", seeds=[S1], category="API/code",
         belief="Calling `model.train()` once before the epoch loop is enough, even though each epoch ends with `model.eval()` for validation.",
         truth="`eval()` switches dropout off until `train()` is called again, so every epoch after the first trains with dropout disabled; call `model.train()` at the start of every epoch.",
         anchor="## 4. The training loop",
         new=dict(
             title='"One `model.train()` before the loop is enough." / 「循环前调用一次 model.train() 就够了」',
             text="A loop that validates with `model.eval()` at the end of each epoch and calls `model.train()` only once, "
                  "before the loop, trains epochs 2, 3, ... in evaluation mode. Dropout (随机失活) shows it:",
             code='''import torch

with torch.random.fork_rng():                        # the notebook's random stream stays as it was
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(p=0.5))
x = torch.ones(1, 8)
model.train()                                        # once, before the loop
for epoch in (1, 2, 3):
    with torch.random.fork_rng():                    # the notebook's random stream stays as it was
        torch.manual_seed(epoch)
        dropped = int((model[1](x) == 0).sum())
    print(f"epoch {epoch}: model.training = {model.training}, dropout zeroed {dropped} of 8 activations")
    model.eval()                                     # the validation pass at the end of the epoch''')),
    dict(id="M35", seeds=[S0], category="data & evaluation",
         belief="Before fine-tuning a Transformer on Chinese, segment the text into words with jieba (jieba 分词) and join them with spaces.",
         truth="A pretrained model comes with its own tokenizer (分词器) that reads raw text; jieba-segmented text joined by spaces is a different token sequence from the one the model was pretrained on (extra space tokens).",
         anchor=("print(type(course_tok).__name__, len(course_tok), course_tok.all_special_tokens)",
                 "## 4. Real tokenizer APIs"),
         new=dict(
             title='"Segment Chinese with jieba before the model\'s tokenizer." / 「先用 jieba 切词，再交给模型」',
             text="jieba 分词 is a tool for word-level pipelines. A model's tokenizer (分词器) is trained on raw text. Feed it "
                  "jieba's words joined by spaces and it sees a different sequence:",
             code='''from course_utils import tokenisation as tz
from course_utils.course_tokenizer import load_course_tokenizer

tok = load_course_tokenizer()
text = "华星科技发布新款智能手机"
segmented = " ".join(tz.jieba_cut(text))
for name, t in [("raw text", text), ("jieba words + spaces", segmented)]:
    print(f"{name:>20}: {t!r} -> {len(tok(t)['input_ids'])} tokens")
print("same token sequence:", tok(text)["input_ids"] == tok(segmented)["input_ids"])''')),
]

# Citation and history errors: no cell can compute them, so they are listed without a notebook link.
REFERENCES: list[dict] = [
    dict(id="R01", seeds=[S0, S1, S2, S4],
         belief="The Transformer paper by Vaswani et al. is titled 'Transformers: State-of-the-Art Pre-training for Language Models' (or is a book, 'Transformer: 一个全新的架构').",
         truth="Vaswani et al. (2017) is 'Attention Is All You Need' (NeurIPS 2017). 'Transformers: State-of-the-Art Natural Language Processing' is the Hugging Face library paper, Wolf et al. (EMNLP 2020 demos)."),
    dict(id="R02", seeds=[S0],
         belief="Andrew Ng wrote a book 'Large Language Models: A Brief History' (《大规模语言模型：原理与应用》).",
         truth="We found no book of this title by Andrew Ng (the Chinese title names a different book); cite the papers themselves (Devlin et al., 2019; Brown et al., 2020)."),
    dict(id="R03", seeds=[S0],
         belief="'Natural Language Processing with Deep Learning' is a Coursera course offered by Hugging Face.",
         truth="'Natural Language Processing with Deep Learning' is Stanford's CS224N; Hugging Face's own course is the free LLM/NLP course on huggingface.co/learn."),
    dict(id="R04", seeds=[S0, S2, S4],
         belief="The GPT-3 paper is titled 'GPT-3: Language Models are Few-Shot Learners'.",
         truth="The title is 'Language Models are Few-Shot Learners' (Brown et al., NeurIPS 2020)."),
    dict(id="R05", seeds=[S1],
         belief="The BERT paper is 'BERT: Pre-training of Deep Neural Networks for Language Understanding'.",
         truth="It is 'BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding' (Devlin et al., NAACL 2019)."),
    dict(id="R06", seeds=[S1],
         belief="GPT's method is described in 'Generative Pretraining from a Language Modeling Perspective' (2018).",
         truth="We found no paper of this title; GPT is Radford et al. (2018), 'Improving Language Understanding by Generative Pre-Training' (OpenAI report)."),
    dict(id="R07", seeds=[S1],
         belief="SFT was introduced in 'Supervised Fine-tuning: A Universal Technique for Representing Text with Unsupervised Pre-training' (2018).",
         truth="We found no paper of this title; the 2018 papers on fine-tuning pretrained language models are Howard & Ruder, 'Universal Language Model Fine-tuning for Text Classification' (ACL 2018), and Radford et al. (2018)."),
    dict(id="R08", seeds=[S2, S4],
         belief="《自然语言处理综合教程》 is a textbook by Peter Norvig (seed 002) or by Jurafsky & Martin (seed 004).",
         truth="Jurafsky & Martin's textbook is 'Speech and Language Processing'; Norvig co-wrote 'Artificial Intelligence: A Modern Approach' (with Russell). Neither wrote a book of that title."),
    dict(id="R09", seeds=[S2],
         belief="ELIZA, an early (rule-based) language model, dates from the 1980s.",
         truth="ELIZA was described by Joseph Weizenbaum in 1966 (Communications of the ACM); it is a pattern-matching program, not a language model."),
]


def wrap_code(ids: list[str], body: str) -> str:
    """The body inside a function: its names stay local, so no later cell of the notebook sees a changed variable."""
    name = "disprove_" + "_".join(x.lower() for x in ids)
    indented = "\n".join(("    " + line) if line.strip() else "" for line in body.splitlines())
    return (f"def {name}():\n    # Common misconception {', '.join(ids)} (MISCONCEPTIONS.md), computed with local names only.\n"
            f"{indented}\n\n\n{name}()")


def notebook_title(nb) -> str:
    """'NN · Title' from the first line of the title cell ('# NN · Title / 中文')."""
    first = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    return first.split(" / ")[0].strip()


def _tags(cell) -> list:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def _find_anchor(notebooks: dict, anchor: str):
    hits = [(path, i) for path, nb in notebooks.items() for i, c in enumerate(nb.cells) if anchor in c.source]
    return hits


def _tagged_code_cells(notebooks: dict, tag: str):
    return [(path, i) for path, nb in notebooks.items() for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]


def apply(notebook_dir: Path) -> tuple[dict, list[str], list[str]]:
    """Tag or insert every row's cell; returns {row id: notebook file name} and a list of problems."""
    paths = sorted(notebook_dir.glob("*.ipynb"))
    notebooks = {p: nbformat.read(p, as_version=4) for p in paths}
    changed, where, problems = set(), {}, []
    for row in ROWS:
        tag = TAG.format(row["id"])
        done = _tagged_code_cells(notebooks, tag)
        if done:
            where[row["id"]] = done[0][0].name
            continue
        # An anchor is a substring, or a tuple of alternatives tried in order (the first with exactly one hit wins),
        # so that a row survives another helper's rewording of one cell.
        anchors = row["anchor"] if isinstance(row["anchor"], tuple) else (row["anchor"],)
        tried = [(a, _find_anchor(notebooks, a)) for a in anchors]
        hits = next((h for _, h in tried if len(h) == 1), None)
        if hits is None:
            problems.append(f"{row['id']}: " + "; ".join(
                f"anchor {a!r} found in {len(h)} cells ({', '.join(f'{p.name}#{i}' for p, i in h) or 'none'})"
                for a, h in tried) + "; expected exactly 1")
            continue
        path, i = hits[0]
        nb = notebooks[path]
        new = row.get("new")
        if new is None:
            if nb.cells[i].cell_type != "code":
                problems.append(f"{row['id']}: anchor cell {path.name}#{i} is not a code cell")
                continue
            _tags(nb.cells[i]).append(tag)
        else:
            ids = new.get("tags", [row["id"]])
            box = nbformat.v4.new_markdown_cell(
                f"> **Common misconception / 常见误区: {new['title']}** (row {', '.join(ids)} of the "
                f"[misconceptions index / 常见误区索引]({repo_url('MISCONCEPTIONS.md')}))\n>\n> {new['text']}")
            box.metadata["tags"] = [NOTE_TAG.format(x) for x in ids]
            code = nbformat.v4.new_code_cell(wrap_code(ids, new["code"]))
            code.metadata["tags"] = [TAG.format(x) for x in ids] + [NEW_TAG]
            # After the anchor and after any cells this script already inserted there, so that the order of
            # ROWS is kept and re-running never reorders.
            at = i + 1
            while at < len(nb.cells) and any(t.startswith(("misconception-note:", NEW_TAG))
                                             for t in nb.cells[at].get("metadata", {}).get("tags", [])):
                at += 1
            nb.cells[at:at] = [box, code]
        changed.add(path)
        where[row["id"]] = path.name
    for path in sorted(changed):
        nbformat.write(notebooks[path], path)
    titles = {p.name: notebook_title(nb) for p, nb in notebooks.items()}
    return {k: (v, titles[v]) for k, v in where.items()}, problems, sorted(p.name for p in changed)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_index(where: dict) -> str:
    base = f"https://github.com/{COURSE_REPO}/blob/{COURSE_REF}/notebooks"
    lines = [
        "# Misconceptions index / 常见误区索引",
        "",
        "The five Chinese seed articles that set this course's topics (blog posts on SFT data, not shipped here; cited by",
        "file name) contain factual, mathematical and code errors. Each row below is one of them: the wrong belief (paraphrased, not quoted), the truth, the seed file it came",
        "from, and the notebook cell that disproves it **by computation**. That cell carries the tag shown in backticks in",
        "its metadata (JupyterLab: the property inspector, 🔧, lists a cell's tags); its stored output shows the computed truth.",
        "",
        "种子文章中的事实、数学与代码错误：每行一条，给出错误说法（意译）、正确结论、出处，以及用计算推翻它的笔记本单元格。",
        "",
        "This file is generated by `tools/apply_misconceptions.py` (which also tags and inserts the cells);",
        "`tests/test_misconceptions.py` checks every link.",
        "",
        "| id | wrong belief / 错误说法 | truth / 正确结论 | category | seed | disproved in |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        name, title = where.get(row["id"], (None, None))
        link = (f"[{title}]({base}/{name}) `{TAG.format(row['id'])}`" if name
                else f"(not yet applied) `{TAG.format(row['id'])}`")
        lines.append(f"| {row['id']} | {_cell(row['belief'])} | {_cell(row['truth'])} | {row['category']} | "
                     f"{', '.join(row['seeds'])} | {link} |")
    lines += [
        "",
        "## Citation and history errors / 引用与史实错误",
        "",
        "These cannot be disproved by running code; the correct references are given instead.",
        "",
        "| id | wrong belief / 错误说法 | truth / 正确结论 | seed |",
        "|---|---|---|---|",
    ]
    for ref in REFERENCES:
        lines.append(f"| {ref['id']} | {_cell(ref['belief'])} | {_cell(ref['truth'])} | {', '.join(ref['seeds'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook_dir", nargs="?", default=str(REPO / "notebooks"))
    parser.add_argument("--index", help="where to write the index (default: MISCONCEPTIONS.md, only for notebooks/)")
    args = parser.parse_args(argv)
    notebook_dir = Path(args.notebook_dir).resolve()
    where, problems, changed = apply(notebook_dir)
    index = args.index or (REPO / "MISCONCEPTIONS.md" if notebook_dir == (REPO / "notebooks").resolve() else None)
    if index:
        Path(index).write_text(render_index(where), encoding="utf-8")
    print(f"{len(where)} of {len(ROWS)} rows applied; notebooks changed: {', '.join(changed) or 'none'}"
          f"{'; index written to ' + str(index) if index else ''}")
    for line in problems:
        print("PROBLEM:", line, file=sys.stderr)
    if changed:
        print("Regenerate the changed notebooks: .venv/bin/python -m course_utils.notebooks "
              + " ".join(str((notebook_dir / n).relative_to(REPO)) if notebook_dir.is_relative_to(REPO)
                         else str(notebook_dir / n) for n in changed))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
