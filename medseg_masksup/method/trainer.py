"""``MaskSupTrainer``: MONAI's SupervisedTrainer with the MaskSup iteration (two branches, one loss)."""

from __future__ import annotations

from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils.enums import CommonKeys as Keys

from .loss import MaskSupLoss
from .wrapper import MaskSupOutput

def amp_settings(device: torch.device) -> tuple[dict[str, Any], str]:
    """``amp_kwargs`` for autocast and a label: bf16 where the GPU supports it (no GradScaler needed),
    fp16 + GradScaler on older GPUs, bf16 autocast on CPU."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return {"dtype": torch.bfloat16}, "bf16"
        return {"dtype": torch.float16}, "fp16+GradScaler"
    return {"dtype": torch.bfloat16}, "bf16 (CPU autocast)"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and iteration."""


#: keys this trainer adds to ``engine.state.output`` (besides image, label, pred, loss)
LOSS_PART_KEYS = ("loss_seg", "loss_masked", "loss_consistency")


class MaskSupTrainer(SupervisedTrainer):
    """SupervisedTrainer whose iteration runs a :class:`~medseg_masksup.method.wrapper.MaskSup` network.

    ``network`` must be a ``MaskSup`` (or a DDP around one) and ``loss_function`` a ``MaskSupLoss``.
    Everything else (events, AMP scaler, decollation, handlers, metrics) is SupervisedTrainer's.
    The output holds ``image``, ``label``, ``pred`` (clean-branch logits), ``loss`` (total) and the
    unweighted parts ``loss_seg``, ``loss_masked``, ``loss_consistency``, plus ``occlusion`` (the mask).
    A NaN or infinite loss raises :class:`NonFiniteLossError` before any weight is touched.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.loss_function, MaskSupLoss):
            raise TypeError(f"MaskSupTrainer needs a MaskSupLoss, got {type(self.loss_function).__name__}")
        if self.accumulation_steps != 1:
            raise ValueError("MaskSupTrainer does not support gradient accumulation (accumulation_steps must be 1)")
        if self.amp_kwargs.get("dtype") == torch.bfloat16:
            self.scaler = None  # bf16 autocast keeps fp32's range: no loss scaling needed

    def _iteration(self, engine: MaskSupTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        inputs, targets = batch[0], batch[1]
        # The training step needs no image metadata: plain tensors skip MetaTensor's per-op dispatch
        # (a large share of a CPU step) and are what torch.compile needs (pytorch/pytorch#117026).
        inputs = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        targets = targets.as_tensor() if isinstance(targets, MetaTensor) else targets
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets}

        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with torch.autocast(inputs.device.type, enabled=bool(engine.amp), **engine.amp_kwargs):
            out: MaskSupOutput = engine.network(inputs)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            parts = engine.loss_function(out.logits, out.masked_logits, targets)
        engine.state.output.update(
            {
                Keys.PRED: out.logits,
                Keys.LOSS: parts.total,
                "loss_seg": parts.seg,
                "loss_masked": parts.masked,
                "loss_consistency": parts.consistency,
            }
        )
        if out.mask is not None:
            engine.state.output["occlusion"] = out.mask
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if not torch.isfinite(parts.total.detach()):
            raise NonFiniteLossError(
                f"loss is {parts.total.item()} at epoch {engine.state.epoch}, iteration {engine.state.iteration} "
                f"(seg {parts.seg.item():.4g}, masked {parts.masked.item():.4g}, consistency {parts.consistency.item():.4g}); "
                "training stopped before the weights were updated, the last good checkpoint is kept. "
                "Check the data of this batch, or lower --lr"
            )

        if engine.scaler is not None:
            engine.scaler.scale(parts.total).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.scaler.step(engine.optimizer)
            engine.scaler.update()
        else:
            parts.total.backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
