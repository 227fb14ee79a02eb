"""AdamW whose `rowwise` parameter groups change only the rows a step's gradient reaches
(`strategy.word_embeddings: rows`: of the 30,522-row word-embedding matrix, the few hundred words in the batch).

Every other group takes torch's AdamW step (any kernel) unchanged. A row-wise matrix is updated as if each
of its rows were a separate parameter under AdamW that only takes a step when its gradient is non-zero: the
row's own step count drives its bias correction, its moments decay only on its own steps, and the decoupled
weight decay is applied on those steps only. Why not the alternatives:

- the matrix in the dense AdamW group, unseen rows merely having a zero gradient: their momentum from earlier
  steps keeps moving them and weight decay shrinks all 30,522 rows every step, so every row changes, and the
  dense update over 11.7M entries is the cost this option exists to skip;
- SparseAdam on sparse gradients: no weight decay at all (the matrix would lose AdamW's decay), and a sparse
  gradient needs changes inside the encoder and in gradient clipping.

Seen rows are found from the gradient (a row with a non-zero norm): the padding row, whose gradient
`nn.Embedding(padding_idx=...)` keeps at zero, never changes, as under dense AdamW it would only decay.
"""

from __future__ import annotations

import torch


class RowwiseAdamW(torch.optim.AdamW):
    """torch.optim.AdamW for the groups without `rowwise: True`; the row-wise update above for those with it.
    The row-wise state (step, exp_avg, exp_avg_sq, row_steps) lives in `self.state`, so state_dict() saves it."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rowwise = [p for group in self.param_groups if group.get("rowwise") for p in group["params"]]
        grads = [p.grad for p in rowwise]
        for parameter in rowwise:  # AdamW skips a parameter without a gradient
            parameter.grad = None
        try:
            super().step()
        finally:
            for parameter, grad in zip(rowwise, grads, strict=True):
                parameter.grad = grad
        for group in self.param_groups:
            if group.get("rowwise"):
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        self._row_step(parameter, group)
        return loss

    def _row_step(self, parameter: torch.Tensor, group: dict) -> None:
        grad = parameter.grad
        # Each row's L2 norm, not `grad.ne(0).any(dim=1)`: on CPU that bool reduction over the 11.7M entries was
        # several times slower than the norm's float reduction. The norm reads 0 only when every entry is under
        # ~1e-22 (squares underflow), where AdamW's step (lr * g / (|g| + eps)) is ~1e-14 * lr: such a row counts
        # as unseen.
        rows = torch.linalg.vector_norm(grad, dim=1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return
        state = self.state[parameter]
        if not state:
            # torch's AdamW reads a `step` in every state it loads: here the steps that reached the matrix.
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(parameter)
            state["exp_avg_sq"] = torch.zeros_like(parameter)
            # float, as load_state_dict casts state to the parameter's dtype; exact up to 2^24 steps
            state["row_steps"] = torch.zeros(parameter.shape[0], dtype=parameter.dtype, device=parameter.device)
        state["step"] += 1
        (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
        g = grad[rows]
        steps = state["row_steps"][rows] + 1
        state["row_steps"][rows] = steps
        m = state["exp_avg"][rows].mul_(beta1).add_(g, alpha=1 - beta1)
        v = state["exp_avg_sq"][rows].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        state["exp_avg"][rows], state["exp_avg_sq"][rows] = m, v
        # torch's AdamW, per row: p *= 1 - lr * wd; p -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
        # The bias corrections in float64, as torch computes them (in float32, 1 - 0.999 is off by 1e-5).
        exponent = steps.double().unsqueeze(1)
        step_size = (lr / (1 - beta1**exponent)).to(parameter.dtype)
        root_bias2 = (1 - beta2**exponent).sqrt().to(parameter.dtype)
        values = parameter[rows] * (1 - lr * group["weight_decay"])
        parameter[rows] = values - step_size * m / (v.sqrt() / root_bias2 + eps)
