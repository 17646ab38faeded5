"""The course glossary (术语表): one term per idea, in English and Chinese, with where it is introduced.

This list is the one source of truth: ``python -m course_utils.glossary`` writes GLOSSARY.md from it,
notebook 00 prints it, and a test checks that each term really appears in the notebook it points to
and that the colliding names the course retired (e.g. 对数几率 for logits) do not come back.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple


class Term(NamedTuple):
    english: str
    chinese: str
    definition: str
    notebook: str  # file name of the notebook that introduces it


TERMS: list[Term] = [
    Term("supervised fine-tuning (SFT)", "有监督微调", "Training a pretrained model further on input–output pairs, with the loss on the outputs.", "08_sft_causal_lm.ipynb"),
    Term("tokenizer", "分词器", "The model's map from text to token ids and back; fixed when the model is pretrained.", "01_tokenisation.ipynb"),
    Term("word segmentation", "分词（切词）", "Splitting text into words, as jieba does for Chinese; a preprocessing step, not the model's tokenizer.", "01_tokenisation.ipynb"),
    Term("token", "词元", "One entry of a tokenizer's vocabulary: a character, a piece of a word, a word or a control symbol.", "01_tokenisation.ipynb"),
    Term("vocabulary", "词表", "The fixed list of tokens a tokenizer can emit, each with an integer id.", "01_tokenisation.ipynb"),
    Term("byte-pair encoding (BPE)", "字节对编码", "Builds a vocabulary by repeatedly merging the most frequent adjacent pair of symbols.", "01_tokenisation.ipynb"),
    Term("WordPiece", "WordPiece", "BERT's subword scheme: greedy longest-match against the vocabulary, with ## marking a continuation.", "01_tokenisation.ipynb"),
    Term("unknown token", "未知词元", "The [UNK] id a tokenizer gives to text its vocabulary cannot cover; byte-level BPE never needs one.", "01_tokenisation.ipynb"),
    Term("special token", "特殊词元", "A token with a control role, such as [CLS], [SEP] or <|im_end|>; never produced by splitting ordinary text.", "01_tokenisation.ipynb"),
    Term("fertility", "平均词元数", "Tokens per word (or per character): how finely a tokenizer cuts a language.", "01_tokenisation.ipynb"),
    Term("NFKC", "NFKC 规范化", "Unicode normalisation that folds compatibility forms, e.g. full-width digits to ASCII.", "01_tokenisation.ipynb"),
    Term("one-hot", "独热编码", "A vector with 1 at the class index and 0 elsewhere.", "02_labels_and_sft_formats.ipynb"),
    Term("multi-class", "多分类", "Exactly one of several classes per example; softmax and cross-entropy.", "02_labels_and_sft_formats.ipynb"),
    Term("multi-label", "多标签", "Any subset of the labels per example; one sigmoid and BCE per label.", "02_labels_and_sft_formats.ipynb"),
    Term("BIO", "BIO 标注", "Token tags for spans: B- begins an entity, I- continues it, O is outside.", "02_labels_and_sft_formats.ipynb"),
    Term("chat template", "对话模板", "A Jinja template that renders a list of messages into the exact text a chat model was trained on.", "05b_chat_formats_and_loss_masks.ipynb"),
    Term("loss mask", "损失掩码", "Label -100 at the positions that must not be trained; they add nothing to the loss.", "05b_chat_formats_and_loss_masks.ipynb"),
    Term("label shift", "标签移位", "In a causal LM the logits at position t are scored against the token at t + 1.", "05b_chat_formats_and_loss_masks.ipynb"),
    Term("logits", "未归一化得分（logits）", "The raw scores a model outputs before softmax; not log-odds except for a binary sigmoid.", "03_losses.ipynb"),
    Term("softmax", "softmax 归一化", "exp(z_i) / Σ exp(z_j): turns logits into probabilities that sum to 1.", "03_losses.ipynb"),
    Term("cross-entropy", "交叉熵", "−log p(correct class); averaged over the trained positions.", "03_losses.ipynb"),
    Term("label smoothing", "标签平滑", "Trains toward a target that puts ε spread over all classes instead of a hard one-hot.", "03_losses.ipynb"),
    Term("perplexity", "困惑度", "exp of the mean token cross-entropy.", "03_losses.ipynb"),
    Term("ignore_index", "忽略索引", "The label value (-100 in PyTorch) whose positions the loss skips.", "03_losses.ipynb"),
    Term("gradient accumulation", "梯度累积", "Summing gradients over micro-batches before one optimiser step; divide by the step's trained tokens.", "03_losses.ipynb"),
    Term("learning rate", "学习率", "The step size that scales each update.", "04_optimisers.ipynb"),
    Term("momentum", "动量", "A running average of gradients that smooths and speeds up the steps.", "04_optimisers.ipynb"),
    Term("AdamW", "AdamW", "Adam with bias-corrected moment estimates and weight decay applied apart from the gradient.", "04_optimisers.ipynb"),
    Term("weight decay", "权重衰减", "Shrinks the weights a little at every step.", "04_optimisers.ipynb"),
    Term("warmup", "预热", "Raising the learning rate from small to its peak over the first steps.", "04_optimisers.ipynb"),
    Term("gradient clipping", "梯度裁剪", "Rescaling all gradients when their global norm exceeds a limit.", "04_optimisers.ipynb"),
    Term("attention", "注意力", "Each position takes a weighted average of values, weighted by softmax(q·k / √d).", "05_attention.ipynb"),
    Term("causal mask", "因果掩码", "Lets each position attend only to itself and earlier positions.", "05_attention.ipynb"),
    Term("attention mask", "注意力掩码", "Says which keys each query may attend to (2-D per example); not the same as the loss mask.", "05_attention.ipynb"),
    Term("padding", "填充", "Filler tokens that make sequences in a batch the same length; masked out of attention and loss.", "05_attention.ipynb"),
    Term("deduplication", "去重", "Removing exact and near copies before splitting and training.", "06_data_cleaning_and_selection.ipynb"),
    Term("MinHash", "MinHash", "A signature whose matching rate estimates Jaccard similarity; LSH bands it to find candidates.", "06_data_cleaning_and_selection.ipynb"),
    Term("leakage", "数据泄漏", "Test information reaching training, e.g. the same template or a near copy on both sides.", "06_data_cleaning_and_selection.ipynb"),
    Term("paired comparison", "配对比较", "Scoring two recipes on the same seeds or items and testing the per-pair differences.", "06_data_cleaning_and_selection.ipynb"),
    Term("class imbalance", "类别不平衡", "Some classes far rarer than others; report per-class recall.", "06b_construction_imbalance_augmentation.ipynb"),
    Term("data augmentation", "数据增强", "Making extra training examples by changing existing ones.", "06b_construction_imbalance_augmentation.ipynb"),
    Term("datasheet", "数据说明书", "A document of a dataset's fields, size, making, licence and known problems.", "06b_construction_imbalance_augmentation.ipynb"),
    Term("dynamic padding", "动态填充", "Padding each batch only to its own longest sequence.", "07_finetune_encoder_classifier.ipynb"),
    Term("macro F1", "宏平均 F1", "The unweighted mean of per-class F1 scores.", "07_finetune_encoder_classifier.ipynb"),
    Term("McNemar", "McNemar 检验", "An exact test on the items two models disagree on.", "07_finetune_encoder_classifier.ipynb"),
    Term("packing", "序列打包", "Concatenating several examples into one row, with a mask that keeps them apart.", "08_sft_causal_lm.ipynb"),
    Term("exact match", "精确匹配", "The generated answer equals the reference answer exactly.", "08_sft_causal_lm.ipynb"),
    Term("LoRA", "低秩适配（LoRA）", "Training a low-rank update B·A beside each frozen weight matrix.", "09_sft_with_libraries.ipynb"),
]

# Wrong or colliding names the course no longer uses (issue 15), as regular expressions, and why.
RETIRED = {
    r"logits?\W{0,3}对数几率|对数几率\W{0,3}logits?": "softmax logits are not log-odds (对数几率); say 未归一化得分（logits）",
    r"unknown token\W{0,3}未登录词|UNK\W{0,4}未登录词": "[UNK] is the unknown token 未知词元; 未登录词 is an out-of-vocabulary word in segmentation",
    r"特殊符号": "say 特殊词元 for special tokens",
    r"多类别": "say 多分类 for multi-class",
    r"错位": "the causal-LM shift is 标签移位, not a misalignment",
}


def markdown(repo_url=None) -> str:
    """GLOSSARY.md's text; notebook names become links when ``repo_url`` (path -> URL) is given."""
    lines = ["# Glossary / 术语表", "",
             "One term per idea across the course. Generated from `course_utils/glossary.py` "
             "(`python -m course_utils.glossary`); do not edit by hand.", "",
             "| English | 中文 | definition | introduced in |", "|---|---|---|---|"]
    for t in TERMS:
        where = t.notebook.removesuffix(".ipynb")
        if repo_url:
            where = f"[{where}]({repo_url('notebooks/' + t.notebook)})"
        lines.append(f"| {t.english} | {t.chinese} | {t.definition} | {where} |")
    return "\n".join(lines) + "\n"


def print_glossary() -> None:
    """Print the glossary as aligned text (what notebook 00 shows)."""
    for t in TERMS:
        print(f"{t.english:<30} {t.chinese:<14} {t.definition}")


def main() -> int:
    from course_utils.notebooks import REPO, repo_url
    (REPO / "GLOSSARY.md").write_text(markdown(repo_url), encoding="utf-8")
    print(f"wrote GLOSSARY.md ({len(TERMS)} terms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
