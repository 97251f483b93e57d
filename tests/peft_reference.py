"""The PyTorch + PEFT reference training loop that lift_jax's LoRA step is compared against (tests only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from tiny_models import load_reference


def peft_model(checkpoint: Path, adapter: Path) -> PeftModel:
    """The transformers model of `checkpoint` with the PEFT adapter at `adapter`, trainable, float32."""
    return PeftModel.from_pretrained(load_reference(checkpoint), adapter, is_trainable=True)


def batch_loss(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the loss slots' losses, number of loss slots) over all micro-batches of an unpacked lift_jax
    batch (one example per row, so a row's attention mask is its valid tokens)."""
    total = torch.zeros(())
    count = torch.zeros(())
    for a in range(batch["inputs"].shape[0]):
        logits = model(
            input_ids=torch.tensor(batch["inputs"][a], dtype=torch.long),
            attention_mask=torch.tensor(batch["segments"][a] > 0, dtype=torch.long),
        ).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        index = torch.tensor(batch["loss_index"][a], dtype=torch.long)
        logp = logp.gather(1, index[..., None].expand(-1, -1, logp.shape[-1]))  # [rows, L, V]
        targets = torch.tensor(batch["targets"][a], dtype=torch.long)
        nll = -(logp.gather(-1, targets) * torch.tensor(batch["weights"][a])).sum(-1)
        slots = torch.tensor(batch["slot_mask"][a])
        total = total + ((nll + torch.tensor(batch["offsets"][a])) * slots).sum()
        count = count + slots.sum()
    return total, count


def train_reference(
    checkpoint: Path, adapter: Path, batches: list[dict[str, np.ndarray]], lr: float, clip: float = 1.0
) -> tuple[list[float], PeftModel]:
    """AdamW (torch defaults, no weight decay) with grad-norm clipping; per-step losses and the model."""
    torch.manual_seed(0)
    model = peft_model(checkpoint, adapter).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = []
    for batch in batches:
        opt.zero_grad()
        total, count = batch_loss(model, batch)
        loss = total / count
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        losses.append(loss.item())
    return losses, model
