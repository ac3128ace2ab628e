#!/usr/bin/python3
"""Native PyTorch peers of pixelfly's benches, on the same shapes and settings.

Workloads (float32, CPU):
  linear_dense     nn.Linear(1024, 4096) forward + backward (dX, dW, db) at batch 256
  linear_masked    the Pixelfly layer 1024 -> 4096 as the reference code (HazyResearch/fly) runs it on CPU:
                   the kept 32x32 blocks (flat block butterfly B 16, f 2) scattered into a dense weight on
                   every call, F.linear, plus the rank-32 low-rank term and the per-row gate
                   g = sigmoid(gate(x)), y = (1 - g) * sparse + g * lowrank + bias; forward + backward
  mlp_dense_step   MLP 784-2048-2048-10 (GELU) training step: cross-entropy, backward, AdamW
                   (lr 1e-3, weight decay 0.01) at batch 128

Threads: PyTorch's best setting on a small machine is one OpenMP thread and n BLAS threads (the default,
n OpenMP threads plus n BLAS threads, spin and starve each other). `--threads n` sets OMP_NUM_THREADS=1
and OPENBLAS_NUM_THREADS=n before torch loads.

Two modes:
  torch_peers.py --threads n --serve   reads "NAME REPS" lines on stdin, runs REPS timed calls of NAME,
                                       answers one JSON line {"name", "ms": [...]} per request
                                       (bench/peers.ts drives it, interleaved with pixelfly's runs)
  torch_peers.py --threads n           runs each workload on its own and prints median milliseconds

The first line printed is a JSON description: torch version, the BLAS library torch loaded, threads, the
sparse layout's kept-block count.
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--serve", action="store_true")
ap.add_argument("--reps", type=int, default=15)
ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
args = ap.parse_args()

# Before torch loads: OpenMP and OpenBLAS read these when the libraries start.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(1)


def blas_library():
    """The BLAS shared object this process loaded (OpenBLAS, reference BLAS, ...)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return sorted(libs)
    except OSError:
        return []


def flat_butterfly_layout(out_features, in_features, block, butterfly_size, n_factors):
    """Kept (block-row, block-column) tiles of the flat block butterfly (Chen, Dao et al., Section 3.2):
    cell (i, j) of the B x B grid is kept when i == j or i XOR j == 2^k for some k < n_factors; the grid is
    stretched over the (out, in) weight and pooled to block x block tiles."""
    B = butterfly_size
    i = np.arange(B)[:, None]
    j = np.arange(B)[None, :]
    grid = i == j
    for k in range(n_factors):
        grid = grid | ((i ^ j) == (1 << k))
    dense = np.repeat(np.repeat(grid, out_features // B, axis=0), in_features // B, axis=1)
    tiles = dense.reshape(out_features // block, block, in_features // block, block).any(axis=(1, 3))
    return tiles


M_LIN, K_LIN, N_LIN, BLOCK, RANK = 256, 1024, 4096, 32, 32
LAYOUT = flat_butterfly_layout(N_LIN, K_LIN, BLOCK, 16, 2)
ROWS, COLS = np.nonzero(LAYOUT)


def make_linear_dense():
    lin = nn.Linear(K_LIN, N_LIN)
    x = torch.randn(M_LIN, K_LIN, requires_grad=True)
    dy = torch.randn(M_LIN, N_LIN)

    def step():
        lin.zero_grad(set_to_none=True)
        x.grad = None
        lin(x).backward(dy)

    return step


class MaskedPixelfly(nn.Module):
    """The reference code's CPU path for a Pixelfly layer: densify the kept blocks, then dense products."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.n, self.k = out_features, in_features
        nnz = len(ROWS)
        self.weight = nn.Parameter(torch.randn(nnz, BLOCK, BLOCK) * 0.02)
        self.rows = torch.from_numpy(ROWS)
        self.cols = torch.from_numpy(COLS)
        self.U = nn.Parameter(torch.randn(out_features, RANK) * 0.02)
        self.V = nn.Parameter(torch.randn(RANK, in_features) * 0.02)
        self.gate = nn.Linear(in_features, 1)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def dense_weight(self):
        r, c = self.n // BLOCK, self.k // BLOCK
        w = self.weight.new_zeros(r, c, BLOCK, BLOCK)
        w = w.index_put((self.rows, self.cols), self.weight)
        return w.permute(0, 2, 1, 3).reshape(self.n, self.k)

    def forward(self, x):
        g = torch.sigmoid(self.gate(x.detach()))
        sparse = F.linear(x, self.dense_weight())
        low_rank = (x @ self.V.t()) @ self.U.t()
        return (1 - g) * sparse + g * low_rank + self.bias


def make_linear_masked():
    layer = MaskedPixelfly(K_LIN, N_LIN)
    x = torch.randn(M_LIN, K_LIN, requires_grad=True)
    dy = torch.randn(M_LIN, N_LIN)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(dy)

    return step


def make_mlp_dense_step():
    hidden, batch = 2048, 128
    model = nn.Sequential(
        nn.Linear(784, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 10)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(batch, 784)
    labels = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()

    return step


WORKLOADS = {
    "linear_dense": make_linear_dense(),
    "linear_masked": make_linear_masked(),
    "mlp_dense_step": make_mlp_dense_step(),
}


# cpu: this process's CPU time (steadier on a shared machine; one BLAS thread only, as threads add up)
CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter


def timed(name, reps):
    fn = WORKLOADS[name]
    ms = []
    for _ in range(reps):
        t0 = CLOCK()
        fn()
        ms.append((CLOCK() - t0) * 1e3)
    return ms


info = {
    "torch": torch.__version__,
    "blas": blas_library(),
    "threads": {"omp": torch.get_num_threads(), "blas": args.threads},
    "clock": args.clock,
    "nnz": int(len(ROWS)),
    "density": float(LAYOUT.mean()),
}
print(json.dumps(info), flush=True)
for fn in WORKLOADS.values():  # warm: first calls allocate and pick kernels
    fn()
    fn()

if args.serve:
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        name, reps = parts[0], int(parts[1]) if len(parts) > 1 else 1
        if name not in WORKLOADS:
            print(json.dumps({"name": name, "error": f"unknown workload {name}"}), flush=True)
            continue
        print(json.dumps({"name": name, "ms": timed(name, reps)}), flush=True)
else:
    for name in WORKLOADS:
        ms = sorted(timed(name, args.reps))
        print(f"{name}: {ms[len(ms) // 2]:.2f} ms (median of {len(ms)}, {args.threads} BLAS threads)")
