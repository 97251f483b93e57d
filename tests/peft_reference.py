"""The PyTorch + PEFT reference training loop that lift_jax's LoRA step is compared against (tests only)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from tiny_models import load_reference

Example = list[tuple[list[int], list[int]]]  # one step's (ids, loss mask) examples


def peft_model(checkpoint: Path, adapter: Path) -> PeftModel:
    """The transformers model of `checkpoint` with the PEFT adapter at `adapter`, trainable, float32."""
    return PeftModel.from_pretrained(load_reference(checkpoint), adapter, is_trainable=True)


def batch_loss(model: torch.nn.Module, examples: Example, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of masked next-token NLL, number of loss tokens) over a step's raw (ids, loss mask) examples in
    micro-batches of `rows`. The shift is the reference's own (logits at position t score id t + 1, the loss
    mask of id t + 1 weighs it), from the raw ids: lift_jax.batching is not involved."""
    total = torch.zeros(())
    count = torch.zeros(())
    for start in range(0, len(examples), rows):
        group = examples[start : start + rows]
        width = max(len(ids) for ids, _ in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        valid = torch.zeros((len(group), width), dtype=torch.long)
        loss_mask = torch.zeros((len(group), width))
        for r, (row_ids, row_mask) in enumerate(group):
            ids[r, : len(row_ids)] = torch.tensor(row_ids)
            valid[r, : len(row_ids)] = 1
            loss_mask[r, : len(row_mask)] = torch.tensor(row_mask, dtype=torch.float32)
        logits = model(input_ids=ids, attention_mask=valid).logits[:, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
        weights = loss_mask[:, 1:] * valid[:, 1:]
        total = total + (nll * weights).sum()
        count = count + weights.sum()
    return total, count


def train_reference(
    checkpoint: Path, adapter: Path, steps: list[Example], lr: float, rows: int, clip: float = 1.0
) -> tuple[list[float], PeftModel]:
    """AdamW (torch defaults, no weight decay) with grad-norm clipping over each step's raw examples (micro-batches
    of `rows`); per-step losses and the model."""
    torch.manual_seed(0)
    model = peft_model(checkpoint, adapter).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = []
    for examples in steps:
        opt.zero_grad()
        total, count = batch_loss(model, examples, rows)
        loss = total / count
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        losses.append(loss.item())
    return losses, model
