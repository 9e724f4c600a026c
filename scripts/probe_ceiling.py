#!/usr/bin/env python3
"""How far can the demo's image tower get on the demo's data when it is told the labels?

A PyTorch replica of the demo's HLIP ViT (patch 4x8x8, width 72, 4 blocks: slice, scan, slice, study;
CLS + mean-token pooling, fan-in init, AdamW as the demo; partitions and prefix-token averaging as
hlip-spec §2.6, fixed sin-cos position embeddings of the same kind, not bit-identical) trained *supervised* on the finding labels
(binary cross-entropy on 10 x the L2-normalised 64-d features) instead of contrastively on reports:
an upper bound on what 200 contrastive steps can reach. A 3-layer 3-D CNN with global max pooling
(scans as channels) is the comparison. Reads `hlip synth` output; needs torch (not a project
dependency; not run in CI).

    npx hlip synth --kind mri --scans 3 --studies 480 --heldout 120 --seed 1 --size 16x32x32 \
        --difficulty easy --out /tmp/synth        # the demo's data (also in runs/demo/data)
    python3 scripts/probe_ceiling.py /tmp/synth --model hlip --steps 1000
    python3 scripts/probe_ceiling.py /tmp/synth --model cnn --steps 400

Prints one JSON line per evaluation: model, step, held-out and training macro AUC, per-finding AUC.
"""
import argparse, csv, gzip, json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_nifti(path):
    raw = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
    if struct.unpack('<i', raw[:4])[0] != 348:
        raise ValueError(f'{path}: not a little-endian NIfTI-1 file')
    dims = struct.unpack('<8h', raw[40:56])
    datatype = struct.unpack('<h', raw[70:72])[0]
    vox_offset, slope, inter = struct.unpack('<3f', raw[108:120])
    dt = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64}[datatype]
    nx, ny, nz = dims[1], dims[2], dims[3]
    a = np.frombuffer(raw, dtype=dt, count=nx * ny * nz, offset=int(vox_offset)).astype(np.float32)
    if slope != 0:
        a = a * slope + inter
    return a.reshape(nz, ny, nx)  # hlip synth stores RPI: this is the [D, H, W] array the loader returns


def load_split(root, split):
    manifest = json.load(open(os.path.join(root, f'{split}.json')))
    rows = list(csv.reader(open(os.path.join(root, f'{split}_labels.csv'))))
    names = rows[0][1:]
    labels = {r[0]: [int(v) for v in r[1:]] for r in rows[1:]}
    xs, ys = [], []
    for sid, study in manifest.items():
        xs.append(np.stack([read_nifti(os.path.join(root, sid, f'{s}.nii.gz')) for s in study['series']]))
        ys.append(labels[sid])
    x = torch.from_numpy((np.stack(xs)[:, :, None] - 0.449) / 0.226)  # [N, scans, 1, D, H, W]
    return x, torch.tensor(ys, dtype=torch.float32), names


def auc(y, s):
    order = np.argsort(s, kind='stable')
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    pos = y.sum()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def sincos(n, dim):
    pos = torch.arange(n).float()[:, None]
    om = 1.0 / 10000 ** (torch.arange(dim // 2).float() / (dim // 2))
    return torch.cat([torch.sin(pos * om), torch.cos(pos * om)], 1)


class Block(nn.Module):
    def __init__(self, e, heads, ratio):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(e, eps=1e-6), nn.LayerNorm(e, eps=1e-6)
        self.qkv, self.proj = nn.Linear(e, 3 * e), nn.Linear(e, e)
        self.fc1, self.fc2 = nn.Linear(e, int(e * ratio)), nn.Linear(int(e * ratio), e)
        self.h = heads

    def forward(self, cls, x, level):  # cls [B, 1, E]; x [B, S, d, h*w, E]
        b, e = x.shape[0], x.shape[-1]
        g = {'slice': x.reshape(-1, x.shape[3], e), 'scan': x.reshape(b * x.shape[1], -1, e), 'study': x.reshape(b, -1, e)}[level]
        n = g.shape[0] // b
        z = torch.cat([cls.repeat_interleave(n, 0), g], 1)  # the prefix token joins every window
        q, k, v = self.qkv(self.n1(z)).view(z.shape[0], z.shape[1], 3, self.h, e // self.h).permute(2, 0, 3, 1, 4)
        z = z + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(z.shape))
        z = z + self.fc2(F.gelu(self.fc1(self.n2(z))))
        return z[:, :1].reshape(b, n, 1, e).mean(1), z[:, 1:].reshape(x.shape)


class HlipReplica(nn.Module):
    def __init__(self, scans, shape, patch=(4, 8, 8), e=72, levels=('slice', 'scan', 'slice', 'study'), heads=3, ratio=4, out=64):
        super().__init__()
        self.scans, self.shape, self.patch = scans, shape, patch
        self.grid = [s // p for s, p in zip(shape, patch)]
        gd, gh, gw = self.grid
        self.embed = nn.Conv3d(1, e, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, e))
        self.blocks = nn.ModuleList([Block(e, heads, ratio) for _ in levels])
        self.levels = levels
        self.norm = nn.LayerNorm(e, eps=1e-6)
        third = e // 3
        pos = torch.cat([sincos(gd, e - 2 * third)[:, None, None].expand(gd, gh, gw, -1),
                         sincos(gh, third)[None, :, None].expand(gd, gh, gw, -1),
                         sincos(gw, third)[None, None].expand(gd, gh, gw, -1)], -1)
        self.register_buffer('pos', pos.reshape(1, 1, gd, gh * gw, e))
        self.register_buffer('scan_pos', sincos(scans, e)[None, :, None, None])
        self.head = nn.Linear(2 * e, out, bias=False)

    def forward(self, x):
        b = x.shape[0]
        t = self.embed(x.reshape(b * self.scans, 1, *self.shape))
        e = t.shape[1]
        t = t.permute(0, 2, 3, 4, 1).reshape(b, self.scans, self.grid[0], -1, e) + self.pos + self.scan_pos
        cls = self.cls.expand(b, 1, e)
        for blk, level in zip(self.blocks, self.levels):
            cls, t = blk(cls, t, level)
        cls = self.norm(cls)[:, 0]
        return self.head(torch.cat([cls, self.norm(t).reshape(b, -1, e).mean(1)], -1))


class Cnn(nn.Module):
    def __init__(self, scans, out=64):
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(scans, 32, 3, padding=1), nn.ReLU(), nn.Conv3d(32, 32, 3, padding=1), nn.ReLU(),
                                  nn.Conv3d(32, 64, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(64, out, bias=False)

    def forward(self, x):
        return self.head(self.body(x[:, :, 0]).amax((2, 3, 4)))


def fan_in(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.normal_(m.weight, std=1 / math.sqrt(m.weight[0].numel()))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root')
    p.add_argument('--model', choices=['hlip', 'cnn'], default='hlip')
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--every', type=int, default=250)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    xt, yt, names = load_split(a.root, 'train')
    xv, yv, _ = load_split(a.root, 'valid')
    scans, shape = xt.shape[1], tuple(xt.shape[3:])
    net = HlipReplica(scans, shape) if a.model == 'hlip' else Cnn(scans)
    fan_in(net)
    cls_head = nn.Linear(64, len(names))
    params = list(net.parameters()) + list(cls_head.parameters())
    opt = torch.optim.AdamW([{'params': [q for q in params if q.ndim >= 2], 'weight_decay': 0.2},
                             {'params': [q for q in params if q.ndim < 2], 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
    logits = lambda x: cls_head(10 * F.normalize(net(x), dim=-1))

    def evaluate(x, y):
        net.eval()
        with torch.no_grad():
            s = torch.cat([logits(x[i:i + 32]) for i in range(0, len(x), 32)]).numpy()
        net.train()
        return [auc(y[:, k].numpy(), s[:, k]) for k in range(len(names))]

    rng = np.random.default_rng(a.seed)
    order, t0 = [], time.time()
    for step in range(a.steps):
        if len(order) < a.batch:
            order += list(rng.permutation(len(xt)))
        idx, order = order[:a.batch], order[a.batch:]
        lr = a.lr * (step + 1) / a.warmup if step < a.warmup else 0.5 * (1 + math.cos(math.pi * (step - a.warmup) / (a.steps - a.warmup))) * a.lr
        for g in opt.param_groups:
            g['lr'] = lr
        loss = F.binary_cross_entropy_with_logits(logits(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % a.every == 0 or step + 1 == a.steps:
            held, train = evaluate(xv, yv), evaluate(xt[:240], yt[:240])
            print(json.dumps({'model': a.model, 'step': step + 1, 'held_out_macro_auc': round(float(np.mean(held)), 3),
                              'train_macro_auc': round(float(np.mean(train)), 3), 'per_finding': dict(zip(names, [round(v, 3) for v in held])),
                              'loss': round(loss.item(), 4), 'seconds': round(time.time() - t0, 1)}), flush=True)


if __name__ == '__main__':
    sys.exit(main())
