"""Training data of a prior: images, and for a conditional prior their condition images, cropped alike.

:class:`TrainingPairs` is a ``torch.utils.data.Dataset`` of ``(image, condition)`` pairs whose
condition is either stored (paired files, e.g. MR slices for MR→CT) or simulated from the image on
each draw by a task's simulator (e.g. the FBP image of a random limited-angle scan, DOLCE-style):
``simulate(images (n, *spatial), generator) -> conditions (n, Cc, *spatial)``. The simulator sees
whole images, so the random patch cut afterwards is the same region of both. Training draws
batches through :meth:`TrainingPairs.batch` with an explicit generator, which keeps resumed runs
bit-exact (the generator's state is in the checkpoint).

Where simulating a whole image costs far more than a training step (a 512² limited-angle FBP on a
CPU: ~0.3 s against ~0.2 s for a small network's step), ``pool = P`` keeps ``P`` simulated pairs and
re-simulates ``refresh`` of them per step, round robin: pool entry ``k`` holds the pair made by
refresh number ``c`` (the last ``c ≡ k mod P`` before the step), from a generator seeded by
``seed`` and ``c``. The pool is therefore a pure function of the step count: a resumed run rebuilds
it and continues exactly.

``crop_focus = "edges"`` draws half of the patches where the image has edges: the patch centre is
drawn with probability proportional to ``1 + |∇x| / mean|∇x|`` (finite differences of the clean
image), so that outlines, tables and bone edges — few pixels of a CT slice, and where a
limited-angle prior errs most — are seen far more often than under uniform crops. MONAI's
``RandWeightedCrop`` does the same per item with NumPy's RNG; here the draw uses the batch's torch
generator so that resumed runs stay exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..physics.gradient import FiniteDifference2D, SliceDifference

Simulator = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TrainingPairs(torch.utils.data.Dataset):
    """Images ``(N, *spatial)`` with stored conditions ``(N, Cc, *spatial)``, a simulator, or neither.

    Args:
        images: ``(N, H, W)`` or ``(N, D, H, W)``, real or complex, normalised.
        cond: stored condition images, or ``None``.
        simulate: a simulator (see module docstring), or ``None``; not together with ``cond``.
        crop: side of the random patches (``0``: whole images).
        seed: seed of the per-item generator :meth:`__getitem__` gives the simulator, and of the pool.
        pool: simulated pairs kept (``0``: simulate every drawn image afresh); see module docstring.
        refresh: pool entries re-simulated per step.
        crop_focus: ``uniform`` patches, or ``edges`` (see module docstring).
    """

    def __init__(
        self,
        images: torch.Tensor,
        cond: torch.Tensor | None = None,
        simulate: Simulator | None = None,
        crop: int = 0,
        seed: int = 0,
        pool: int = 0,
        refresh: int = 1,
        crop_focus: str = "uniform",
    ) -> None:
        if cond is not None and simulate is not None:
            raise ValueError("cond / simulate: expected stored conditions or a simulator, got both")
        if cond is not None and (cond.ndim != images.ndim + 1 or cond.shape[0] != images.shape[0] or cond.shape[2:] != images.shape[1:]):
            raise ValueError(f"cond: expected ({images.shape[0]}, Cc, {', '.join(map(str, images.shape[1:]))}), got {tuple(cond.shape)}")
        if crop < 0:
            raise ValueError(f"crop: expected >= 0, got {crop}")
        if pool < 0 or not 1 <= refresh or (pool and refresh > pool) or (pool and simulate is None):
            raise ValueError(f"pool / refresh: expected pool >= 0 with a simulator and 1 <= refresh <= pool, got {pool} / {refresh}")
        self.images, self.cond, self.simulate, self.crop, self.seed = images, cond, simulate, crop, seed
        if crop_focus not in ("uniform", "edges"):
            raise ValueError(f"crop_focus: expected 'uniform' or 'edges', got {crop_focus!r}")
        self.pool, self.refresh, self.crop_focus = pool, refresh, crop_focus
        self._weights: torch.Tensor | None = None  # (N, positions) patch-origin weights of crop_focus "edges"
        self._pool_step: int | None = None  # the step the pool was last brought up to
        self._pool_index = torch.zeros(pool, dtype=torch.long)
        self._pool_cond: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Whole image ``i`` and its condition (simulated with a generator seeded by ``seed`` and ``i``)."""
        x = self.images[i]
        if self.simulate is not None:
            return x, self.simulate(x[None], torch.Generator().manual_seed(self.seed * 1_000_003 + i))[0]
        return x, None if self.cond is None else self.cond[i]

    def to(self, device: str | torch.device) -> TrainingPairs:
        """Move stored images and conditions (e.g. onto the GPU, where patches are then cut)."""
        self.images = self.images.to(device)
        self.cond = None if self.cond is None else self.cond.to(device)
        return self

    def batch(self, n: int, g: torch.Generator, step: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` random items, cropped to random patches of side ``crop``; conditions cropped alike.

        ``step`` (0-based) tells a pooled simulation which entries to refresh (module docstring).
        """
        if self.pool:
            self._bring_pool_to(step)
            entries = torch.randint(0, self.pool, (n,), generator=g)
            src = self._pool_index[entries]
            x = self.images[src.to(self.images.device)]
            cond = self._pool_cond[entries.to(self._pool_cond.device)]
            return _crops(x, cond, torch.arange(n), self.crop, g, self._origin_weights(src))
        idx = torch.randint(0, self.images.shape[0], (n,), generator=g)
        if self.simulate is None:
            return _crops(self.images, self.cond, idx, self.crop, g, self._origin_weights(idx))
        x = self.images[idx]
        return _crops(x, self.simulate(x, g).to(x.device), torch.arange(n), self.crop, g, self._origin_weights(idx))

    def _origin_weights(self, idx: torch.Tensor) -> torch.Tensor | None:
        """Weights ``(n, positions)`` of each patch origin for the images ``idx`` (``None``: uniform crops)."""
        if self.crop_focus == "uniform" or self.crop == 0 or all(self.crop >= m for m in self.images.shape[1:]):
            return None
        if self._weights is None:
            self._weights = torch.stack([_edge_weights(im, self.crop) for im in self.images.detach().cpu()])
        return self._weights[idx.cpu()]

    def _simulate_entry(self, c: int) -> None:
        """Pool entry ``c mod pool`` ← the pair of refresh number ``c`` (may be negative: the first fill)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 7_919 * c + 104_729)
        i = int(torch.randint(0, self.images.shape[0], (1,), generator=gen))
        cond = self.simulate(self.images[i : i + 1], gen)[0]
        if self._pool_cond is None:
            self._pool_cond = torch.empty((self.pool, *cond.shape), dtype=cond.dtype, device=cond.device)
        k = c % self.pool
        self._pool_index[k], self._pool_cond[k] = i, cond

    def _bring_pool_to(self, step: int) -> None:
        """Refresh the pool for ``step``: counters ``step·refresh … step·refresh + refresh − 1``."""
        first = step * self.refresh
        if self._pool_step is None or step != self._pool_step + 1:  # fresh start or resume: rebuild
            for c in range(first - self.pool, first):
                self._simulate_entry(c)
        for c in range(first, first + self.refresh):
            self._simulate_entry(c)
        self._pool_step = step


def _edge_weights(image: torch.Tensor, crop: int) -> torch.Tensor:
    """Flattened weights of each patch origin of ``image (*spatial)``: ``1 + |∇x| / mean|∇x|`` at the patch centre."""
    a = image.abs().float() if image.is_complex() else image.float()
    grad2 = FiniteDifference2D()(a.reshape(-1, *a.shape[-2:])).square().sum(1).reshape(a.shape)  # in-plane, zero at the far border
    if a.ndim == 3:  # a 3-D patch prior's volumes: slice-to-slice differences too
        grad2[:-1] += SliceDifference()(a).square()
    grad = grad2.sqrt()
    w = 1 + grad / grad.mean().clamp_min(1e-12)
    sides = [min(crop, m) for m in a.shape]
    centres = tuple(slice(c // 2, c // 2 + m - c + 1) for m, c in zip(a.shape, sides))
    return w[centres].flatten()


def _crops(
    x: torch.Tensor, cond: torch.Tensor | None, idx: torch.Tensor, crop: int, g: torch.Generator, weights: torch.Tensor | None = None
):
    """Patches of side ``crop`` of the items ``idx`` of ``x (N, *spatial)`` and the same regions of ``cond``.

    ``weights (n, positions)``: per item, the weight of each patch origin (``None``: uniform).
    """
    size = x.shape[1:]
    if crop == 0 or all(crop >= m for m in size):
        return x[idx], None if cond is None else cond[idx]
    n = idx.shape[0]
    sides = [min(crop, m) for m in size]
    if weights is None:
        starts = [torch.randint(0, m - c + 1, (n,), generator=g).tolist() for m, c in zip(size, sides)]
    else:
        flat = torch.multinomial(weights, 1, generator=g)[:, 0]
        starts = [t.tolist() for t in torch.unravel_index(flat, tuple(m - c + 1 for m, c in zip(size, sides)))]
    boxes = [tuple(slice(o, o + c) for o, c in zip(org, sides)) for org in zip(*starts)]
    xb = torch.stack([x[(i, *b)] for i, b in zip(idx.tolist(), boxes)])
    cb = None if cond is None else torch.stack([cond[(i, slice(None), *b)] for i, b in zip(idx.tolist(), boxes)])
    return xb, cb
