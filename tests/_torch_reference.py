"""The PyTorch side of tests/checkpoint_torch_test.ts.

Rebuilds the reference implementation's layers (HazyResearch/fly:
src/models/layers/blocksparse_linear.py BlockSparseLinear and
FlatBlockButterflySparsityConfig, src/models/layers/fastlinear.py LowRank and
SparseLRLinear, src/models/layers/mlp.py MlpCustom) with the same parameter
and buffer names and the same forward semantics (the "dense" backend), in
float64, from the papers' definitions and fly's code, without pixelfly.

For each case in DIR/cases.json it
1. builds the module, loads pixelfly's checkpoint DIR/<case>.pixelfly.safetensors
   with load_state_dict(strict=True), checks that fly's make_layout gives the
   same layout, runs DIR/<case>.io.safetensors's x and compares with pixelfly's y;
2. builds a fresh module with torch's own seeded initialisation, stores its weight
   in the case's backend form (dense (nnz,b,b), triton (1,nnz,b,b) or huggingface
   (nnz*b,b)), and writes DIR/<case>.torch.safetensors and DIR/<case>.torch_io.safetensors
   (x and its float64 output) with numpy: no safetensors package needed.
Prints one JSON line.

With `--models DIR` it does the same for whole models (DIR/models.json): a
GPT-2 under HuggingFace's parameter paths (transformer.wte, transformer.h.N.attn.c_attn
as a Conv1D (in, 3*out) with q, k and v fused, c_proj, mlp.c_fc/c_proj, ln_1, ln_2,
ln_f, lm_head tied to wte, and the causal `attn.bias`/`attn.masked_bias` buffers),
with fly's SparseLRLinear standing in for the MLP's Conv1Ds where the case asks;
and timm's MlpMixer (stem.proj as a Conv2d, blocks.N.norm1/mlp_tokens/norm2/
mlp_channels, norm, head). Both rebuilt here in float64 from the reference code's
definitions, without pixelfly.
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------- safetensors with numpy

NP = {"F32": "<f4", "I32": "<i4", "U8": "u1", "F64": "<f8", "I64": "<i8"}
ST = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("u1"): "U8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=NP[info["dtype"]]).reshape(info["shape"])
        out[name] = a.copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors.items():
        shape = list(np.asarray(a).shape)  # before ascontiguousarray, which makes a 0-d array 1-d
        a = np.ascontiguousarray(a)
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": ST[a.dtype], "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- fly's layers, rebuilt


def butterfly_factor_to_matrix(twiddle, factor_index):
    # fly src/ops/butterfly_factor.py, without einops
    n_div_b, b, _ = twiddle.shape
    n = b * n_div_b
    stride = b ** factor_index
    x = torch.eye(n).reshape(n, n // (b * stride), b, stride)  # 'bs (diagblk j stride) -> bs diagblk j stride'
    t = twiddle.reshape(n // (b * stride), stride, b, b)  # '(diagblk stride) i j -> diagblk stride i j'
    out = torch.einsum("d s i j, b d j s -> b d i s", t, x)
    return out.reshape(n, n).t()


class FlatBlockButterflySparsityConfig:
    def __init__(self, butterfly_size, n_factors, block=32, global_size=0, shuffle=False):
        self.block, self.butterfly_size, self.n_factors = block, butterfly_size, n_factors
        self.global_size, self.shuffle = global_size, shuffle

    def make_layout(self, out_features, in_features):
        assert out_features % self.block == 0 and in_features % self.block == 0
        twiddle = torch.ones(self.butterfly_size // 2, 2, 2)
        layout = sum(butterfly_factor_to_matrix(twiddle, i) for i in range(self.n_factors))
        layout = layout.bool().int()
        if self.shuffle:
            ngroups = 2 ** (int(math.log2(self.butterfly_size)) - self.n_factors)
            m = layout.shape[0]
            # 'm (group c_per_group) -> m (c_per_group group)'
            layout = layout.reshape(m, ngroups, -1).transpose(1, 2).reshape(m, -1)
        f, f1 = out_features // self.butterfly_size, in_features // self.butterfly_size
        layout = layout.repeat_interleave(f, 0).repeat_interleave(f1, 1)  # 'b b1 -> (b f) (b1 f1)'
        if self.global_size > 0:
            layout[: self.global_size] = 1
            layout[:, : self.global_size] = 1
        p, r = out_features // self.block, in_features // self.block
        layout = layout.reshape(p, self.block, r, self.block).permute(0, 2, 1, 3)
        return (layout > 0).reshape(p, r, -1).any(dim=-1).int()


class BlockSparseLinear(nn.Module):
    def __init__(self, in_features, out_features, sparsity_config, bias=True, backend="dense"):
        super().__init__()
        self.in_features, self.out_features, self.backend = in_features, out_features, backend
        self.block_size = b = sparsity_config.block
        self.in_ext = int(math.ceil(in_features / b)) * b
        self.out_ext = int(math.ceil(out_features / b)) * b
        self.register_buffer("layout", sparsity_config.make_layout(self.out_ext, self.in_ext))
        nnz = int(self.layout.sum().item())
        w = torch.randn(nnz, b, b) / math.sqrt(self.in_ext)
        if backend == "huggingface":
            w = w.transpose(1, 2).reshape(nnz * b, b)  # 'nnz blksz blksz1 -> (nnz blksz1) blksz'
        elif backend == "triton":
            w = w.unsqueeze(0)  # 'nnz blksz blksz1 -> 1 nnz blksz blksz1'
        self.weight = nn.Parameter(w)
        if bias:
            self.bias = nn.Parameter(torch.randn(out_features) * 0.1)
        else:
            self.register_parameter("bias", None)

    def tiles(self):
        b, w = self.block_size, self.weight
        if self.backend == "huggingface":
            return w.reshape(-1, b, b).transpose(1, 2)
        return w.reshape(-1, b, b)

    def forward(self, x):
        x = F.pad(x, (0, self.in_ext - x.shape[-1]))
        b = self.block_size
        p, r = self.layout.shape
        dense = torch.zeros(p * r, b, b, dtype=x.dtype)
        dense[self.layout.flatten().bool()] = self.tiles()  # densify_tensor
        dense = dense.reshape(p, r, b, b).permute(0, 2, 1, 3).reshape(p * b, r * b)
        out = F.linear(x, dense)[..., : self.out_features]
        return out + self.bias if self.bias is not None else out


class LowRank(nn.Module):
    def __init__(self, in_features, out_features, rank, bias=True):
        super().__init__()
        self.lr_weight1 = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
        self.lr_weight2 = nn.Parameter(torch.randn(out_features, rank) / math.sqrt(rank))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(F.linear(x, self.lr_weight1), self.lr_weight2, self.bias)


class SparseLRLinear(nn.Module):
    def __init__(self, in_features, out_features, sparse, rank, bias=True, gating=True):
        super().__init__()
        self.sparse = sparse
        self.low_rank = LowRank(in_features, out_features, rank=rank, bias=False)
        if gating:
            self.gate = nn.Linear(in_features=in_features, out_features=1)
        else:
            self.register_parameter("gate", None)
        if bias:
            self.bias = nn.Parameter(torch.randn(out_features) * 0.1)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        g = torch.sigmoid(self.gate(x)) if self.gate is not None else 0.5
        out = torch.lerp(self.sparse(x), self.low_rank(x), g)
        return out + self.bias if self.bias is not None else out


class MlpCustom(nn.Module):
    def __init__(self, fc1, act, fc2):
        super().__init__()
        self.fc1, self.act, self.fc2, self.drop = fc1, act, fc2, nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def sparse_lr(cfg, i, o, backend):
    s = FlatBlockButterflySparsityConfig(cfg["butterflySize"], cfg["nFactors"], cfg["block"],
                                         cfg.get("globalSize", 0), cfg.get("shuffle", False))
    return SparseLRLinear(i, o, BlockSparseLinear(i, o, s, bias=False, backend=backend), cfg["rank"])


def build(case, backend="dense"):
    cfg, kind = case["config"], case["kind"]
    if kind == "blocksparse":
        s = FlatBlockButterflySparsityConfig(cfg["butterflySize"], cfg["nFactors"], cfg["block"],
                                             cfg.get("globalSize", 0), cfg.get("shuffle", False))
        return BlockSparseLinear(cfg["in"], cfg["out"], s, bias=True, backend=backend)
    if kind == "pixelfly":
        return sparse_lr(cfg, cfg["in"], cfg["out"], backend)
    if kind == "mlp":
        return MlpCustom(sparse_lr(cfg, cfg["in"], cfg["hidden"], backend), nn.ReLU(),
                         sparse_lr(cfg, cfg["hidden"], cfg["in"], backend))
    raise ValueError(kind)


# ---------------------------------------------------------------- GPT-2 (HuggingFace's names) and timm's Mixer


class Conv1D(nn.Module):
    """GPT-2's Conv1D: a linear layer whose weight is (in, out)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.randn(nf) * 0.02)

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, dim, heads, context):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones((context, context), dtype=torch.uint8)).view(
            1, 1, context, context))
        self.register_buffer("masked_bias", torch.tensor(-1e4, dtype=torch.float32))
        self.dim, self.heads = dim, heads
        self.c_attn = Conv1D(3 * dim, dim)
        self.c_proj = Conv1D(dim, dim)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        split = lambda t: t.view(B, L, self.heads, D // self.heads).permute(0, 2, 1, 3)
        q, k, v = split(q), split(k), split(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / (float(v.size(-1)) ** 0.5)
        causal = self.bias[:, :, :L, :L].bool()
        w = torch.where(causal, w, self.masked_bias.to(w.dtype))
        o = torch.matmul(F.softmax(w, dim=-1), v)
        return self.c_proj(o.permute(0, 2, 1, 3).reshape(B, L, D))


class GPT2MLP(nn.Module):
    def __init__(self, dim, hidden, sparse_cfg):
        super().__init__()
        if sparse_cfg is None:
            self.c_fc, self.c_proj = Conv1D(hidden, dim), Conv1D(dim, hidden)
        else:  # fly: its SparseLRLinear where GPT-2 has Conv1D
            self.c_fc, self.c_proj = sparse_lr(sparse_cfg, dim, hidden, "dense"), sparse_lr(sparse_cfg, hidden, dim, "dense")

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, dim, heads, context, hidden, sparse_cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = GPT2Attention(dim, heads, context)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = GPT2MLP(dim, hidden, sparse_cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocabSize"], c["dim"])
        self.wpe = nn.Embedding(c["context"], c["dim"])
        self.drop = nn.Dropout(0.0)
        self.h = nn.ModuleList([GPT2Block(c["dim"], c["heads"], c["context"], 4 * c["dim"], c.get("sparse"))
                                for _ in range(c["depth"])])
        self.ln_f = nn.LayerNorm(c["dim"], eps=1e-5)

    def forward(self, ids):
        h = self.drop(self.wte(ids) + self.wpe(torch.arange(ids.shape[1])))
        for block in self.h:
            h = block(h)
        return self.ln_f(h)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = GPT2Model(c)
        self.lm_head = nn.Linear(c["dim"], c["vocabSize"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as GPT-2

    def forward(self, ids):
        return self.lm_head(self.transformer(ids))


class Mlp(nn.Module):
    """timm's Mlp (exact GELU); fly's SparseLRLinear as fc1/fc2 where the case asks."""

    def __init__(self, i, h, sparse_cfg):
        super().__init__()
        if sparse_cfg is None:
            self.fc1, self.fc2 = nn.Linear(i, h), nn.Linear(h, i)
        else:
            self.fc1, self.fc2 = sparse_lr(sparse_cfg, i, h, "dense"), sparse_lr(sparse_cfg, h, i, "dense")
        self.act, self.drop = nn.GELU(), nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class PatchEmbed(nn.Module):
    def __init__(self, chans, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class MixerBlock(nn.Module):
    def __init__(self, dim, seq_len, tokens_dim, channels_dim, sparse_cfg, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp_tokens = Mlp(seq_len, tokens_dim, sparse_cfg)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp_channels = Mlp(dim, channels_dim, sparse_cfg)

    def forward(self, x):
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class MlpMixer(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        g = c["image"] // c["patch"]
        self.stem = PatchEmbed(c["chans"], c["patch"], c["channels"])
        self.blocks = nn.Sequential(*[MixerBlock(c["channels"], g * g, c["tokenHidden"], c["channelHidden"],
                                                 c.get("sparse"), eps) for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(c["channels"], eps=eps)
        self.head = nn.Linear(c["channels"], c["classes"])

    def forward(self, x):
        return self.head(self.norm(self.blocks(self.stem(x))).mean(dim=1))


def image_from_patches(patches, c):
    """pixelfly's pre-cut patches (B, P, chans*p*p), patches row-major, values (chan, py, px) -> images."""
    B, p, g = patches.shape[0], c["patch"], c["image"] // c["patch"]
    x = patches.reshape(B, g, g, c["chans"], p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, c["chans"], g * p, g * p)


def build_model(case, eps=None):
    if case["kind"] == "gpt2":
        return GPT2LMHeadModel(case["config"])
    return MlpMixer(case["config"], case["config"]["eps"] if eps is None else eps)


def run_model(case, model, x):
    """The model's output, flattened."""
    if case["kind"] == "gpt2":
        return model(torch.from_numpy(x).long()).reshape(-1)
    return model(image_from_patches(torch.from_numpy(x).double(), case["config"])).reshape(-1)


def models(d):
    cases = json.load(open(f"{d}/models.json"))
    report = {}
    for k, case in enumerate(cases):
        name = case["name"]
        r = report[name] = {}
        model = build_model(case)
        sd = {n: torch.from_numpy(a) for n, a in read_safetensors(f"{d}/{name}.pixelfly.safetensors").items()}
        missing, unexpected = model.load_state_dict(sd, strict=True)
        r["strict"] = {"missing": list(missing), "unexpected": list(unexpected)}
        io = read_safetensors(f"{d}/{name}.io.safetensors")
        with torch.no_grad():
            y = run_model(case, model, io["x"])
        ref = torch.from_numpy(io["y"]).double().reshape(-1)
        r["max_abs_diff"] = float((y - ref).abs().max())
        r["max_abs_ref"] = float(ref.abs().max())
        if "referenceEps" in case:  # the reference's own LayerNorm eps (timm's Mixer: 1e-6)
            m2 = build_model(case, case["referenceEps"])
            m2.load_state_dict(sd, strict=True)
            with torch.no_grad():
                r["max_abs_diff_reference_eps"] = float((run_model(case, m2, io["x"]) - ref).abs().max())
        # PyTorch -> pixelfly: torch's own initialisation, rounded to float32
        torch.manual_seed(200 + k)
        model = build_model(case)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.float().double())
            y = run_model(case, model, io["x"])
        state = {}
        for n, t in model.state_dict().items():
            if n.endswith("layout"):
                state[n] = t.numpy().astype("<i4")
            elif t.dtype == torch.uint8:
                state[n] = t.numpy()
            else:
                state[n] = t.numpy().astype("<f4")
        write_safetensors(f"{d}/{name}.torch.safetensors", state)
        write_safetensors(f"{d}/{name}.torch_io.safetensors", {"y": y.numpy().astype("<f4")})
        r["torch_names"] = sorted(state)
    print(json.dumps({"torch": torch.__version__, "cases": report}))


def main(d):
    cases = json.load(open(f"{d}/cases.json"))
    report = {}
    for k, case in enumerate(cases):
        name = case["name"]
        r = report[name] = {}
        # 1. pixelfly -> PyTorch: a strict load, the layout, the outputs
        model = build(case)
        fly_layouts = {n: b.clone() for n, b in model.named_buffers() if n.endswith("layout")}
        sd = {n: torch.from_numpy(a) for n, a in read_safetensors(f"{d}/{name}.pixelfly.safetensors").items()}
        missing, unexpected = model.load_state_dict(sd, strict=True)
        r["strict"] = {"missing": list(missing), "unexpected": list(unexpected)}
        r["layouts_equal"] = all(torch.equal(sd[n].int(), fly_layouts[n]) for n in fly_layouts)
        r["layout_dtypes"] = sorted({str(sd[n].dtype) for n in fly_layouts})
        io = read_safetensors(f"{d}/{name}.io.safetensors")
        with torch.no_grad():
            y = model(torch.from_numpy(io["x"]).double())
        ref = torch.from_numpy(io["y"]).double()
        r["max_abs_diff"] = float((y - ref).abs().max())
        r["max_abs_ref"] = float(ref.abs().max())
        # 2. PyTorch -> pixelfly: torch's own weights, in the case's backend form
        torch.manual_seed(100 + k)
        model = build(case, case.get("torch_backend", "dense"))
        with torch.no_grad():
            for p in model.parameters():  # round to float32 first, so both sides compute from the same values
                p.copy_(p.float().double())
            x = torch.rand(case["M"], case["config"]["in"]).float().double()
            y = model(x)
        state = {}
        for n, t in model.state_dict().items():
            state[n] = t.numpy().astype("<i4") if n.endswith("layout") else t.numpy().astype("<f4")
        write_safetensors(f"{d}/{name}.torch.safetensors", state)
        write_safetensors(f"{d}/{name}.torch_io.safetensors", {"x": x.numpy().astype("<f4"), "y": y.numpy().astype("<f4")})
        r["torch_names"] = sorted(state)
        r["torch_weight_shapes"] = {n: list(a.shape) for n, a in state.items() if n.endswith("sparse.weight") or n == "weight"}
    print(json.dumps({"torch": torch.__version__, "cases": report}))


if __name__ == "__main__":
    if sys.argv[1] == "--models":
        models(sys.argv[2])
    else:
        main(sys.argv[1])
