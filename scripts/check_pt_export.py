#!/usr/bin/env python3
"""Check an `hlip export --to pt` file with Python, outside the test suite.

usage: check_pt_export.py EXPORT.pt SOURCE.safetensors [--model-config model_config.json] [--mode auto|torch|pickle]

SOURCE is the file that was exported (our model.safetensors, a training checkpoint, or any state dict).

--mode torch   (default when `import torch` works)
    1. torch.load(EXPORT, weights_only=True). torch < 2.0 has no BINFLOAT in its weights_only
       unpickler (pytorch/pytorch#94670), so a file holding Python floats (the optimizer's
       param_groups) cannot load that way there; this is reported, and the rest of the check then
       uses weights_only=False, after check (b) below has shown that the file references no global
       outside torch's weights_only allow-list.
    2. Every state_dict tensor equals the source tensor (dtype, shape, bytes).
    3. With --model-config and the reference code importable (open_clip, timm and HLIP's `hlip`
       package on PYTHONPATH): the reference CustomTextCLIP is built, the state_dict is loaded
       strictly both as DistributedDataParallel holds it (`module.` keys) and as open_clip's
       non-distributed resume does (prefix removed), and model.state_dict() equals the source.
       With an optimizer: AdamW over HLIP's two parameter groups (no decay for ndim < 2 or names
       with bn/ln/bias/logit_scale; only requires_grad parameters), optimizer.load_state_dict(), then
       every parameter's step/exp_avg/exp_avg_sq equals the source moments of the parameter with the
       same name, and one optimizer.step() runs.
--mode pickle  (no torch needed: numpy and the standard library)
    zip layout (stored entries, CRCs, 64-byte aligned data), the pickle's opcodes against torch
    1.13's and 2.x's weights_only unpicklers, a restricted Unpickler that resolves only
    collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage and only
    ('storage', ...) persistent ids, then the same tensor comparisons with numpy; optimizer moments
    are matched to source parameters by content.
Exit status 0 when every check passed.
"""
import argparse
import io
import json
import pickle
import pickletools
import struct
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np

# Opcodes each weights_only unpickler accepts (torch/_weights_only_unpickler.py).
TORCH113_OPS = {
    'GLOBAL', 'NEWOBJ', 'REDUCE', 'BUILD', 'APPEND', 'APPENDS', 'SETITEM', 'SETITEMS', 'MARK', 'TUPLE', 'TUPLE1', 'TUPLE2',
    'TUPLE3', 'NONE', 'NEWFALSE', 'NEWTRUE', 'EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT', 'EMPTY_SET', 'BININT', 'BININT1',
    'BININT2', 'BINUNICODE', 'SHORT_BINSTRING', 'BINPERSID', 'BINGET', 'LONG_BINGET', 'BINPUT', 'LONG_BINPUT', 'LONG1',
    'PROTO', 'STOP',
}
TORCH2_OPS = TORCH113_OPS | {'BINFLOAT'}

STORAGE_DTYPES = {
    'FloatStorage': '<f4', 'DoubleStorage': '<f8', 'HalfStorage': '<f2', 'BFloat16Storage': '<u2', 'LongStorage': '<i8',
    'IntStorage': '<i4', 'ShortStorage': '<i2', 'CharStorage': 'i1', 'ByteStorage': 'u1', 'BoolStorage': '?',
}
ST_DTYPES = {'F32': '<f4', 'F64': '<f8', 'F16': '<f2', 'BF16': '<u2', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2', 'I8': 'i1', 'U8': 'u1', 'BOOL': '?'}

failures = []


def check(ok, what):
    print(('  ok    ' if ok else '  FAIL  ') + what)
    if not ok:
        failures.append(what)
    return ok


# ------------------------------------------------------------------ source (safetensors, read by hand)

class Source:
    def __init__(self, path):
        with open(path, 'rb') as f:
            data = f.read()
        n = struct.unpack('<Q', data[:8])[0]
        header = json.loads(data[8:8 + n])
        self.metadata = header.pop('__metadata__', {}) or {}
        self.tensors = {}
        for name, e in header.items():
            b, end = e['data_offsets']
            self.tensors[name] = (e['dtype'], tuple(e['shape']), data[8 + n + b:8 + n + end])
        self.training = self.metadata.get('format') == 'hlip-webgpu/training-checkpoint'
        self.state = json.loads(self.metadata['state']) if self.training else None

    def model(self):
        """Model tensors by reference name (no prefix)."""
        if self.training:
            return {k[len('model.'):]: v for k, v in self.tensors.items() if k.startswith('model.')}
        if any(k.startswith('module.') for k in self.tensors):
            return {k[len('module.'):]: v for k, v in self.tensors.items() if k.startswith('module.')}
        return dict(self.tensors)

    def moments(self, name):
        """(step, exp_avg bytes, exp_avg_sq bytes) of a parameter of a training checkpoint, or None."""
        i = self.state['optimizer']['params'].index(name)
        step = self.state['optimizer']['steps'][i]
        if step is None:
            return None
        return step, self.tensors[f'optimizer.{i}.exp_avg'][2], self.tensors[f'optimizer.{i}.exp_avg_sq'][2]


# ------------------------------------------------------------------ (b) zip + restricted unpickler

class FakeStorageType:
    def __init__(self, name):
        self.name = name


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    arr, _ = storage
    item = arr.itemsize
    view = np.lib.stride_tricks.as_strided(arr[offset:], shape=tuple(size), strides=tuple(s * item for s in stride))
    return np.array(view, copy=True)  # (ascontiguousarray would turn 0-dim into 1-dim)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only what torch's weights_only allow-list would (for this kind of file)."""

    def __init__(self, data, zf, root):
        super().__init__(io.BytesIO(data))
        self.zf, self.root = zf, root

    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return rebuild_tensor_v2
        if module == 'torch' and name in STORAGE_DTYPES:
            return FakeStorageType(name)
        raise pickle.UnpicklingError(f'global {module}.{name} is not on the weights_only allow-list')

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage' and isinstance(pid[1], FakeStorageType)):
            raise pickle.UnpicklingError(f'unsupported persistent id {pid!r}')
        _, st, key, location, numel = pid
        raw = self.zf.read(f'{self.root}/data/{key}')
        arr = np.frombuffer(raw, dtype=STORAGE_DTYPES[st.name])
        if arr.size != numel:
            raise pickle.UnpicklingError(f'storage {key}: {arr.size} elements, persistent id says {numel}')
        return arr, location


def load_restricted(path):
    zf = zipfile.ZipFile(path)
    names = zf.namelist()
    root = names[0].split('/')[0]
    check(all(n.startswith(root + '/') for n in names), f'one top folder ({root}/) holds every entry')
    check(all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist()), 'every entry is stored (no compression)')
    check(zf.testzip() is None, 'every CRC-32 matches')
    raw = open(path, 'rb').read()
    aligned = True
    for i in zf.infolist():
        o = i.header_offset
        nl, el = struct.unpack('<HH', raw[o + 26:o + 30])
        aligned &= (o + 30 + nl + el) % 64 == 0
    check(aligned, 'every entry\'s data starts at a multiple of 64')
    check(zf.read(f'{root}/version') == b'3\n', 'version record "3"')
    data = zf.read(f'{root}/data.pkl')
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    check(ops <= TORCH2_OPS, f'pickle opcodes within torch 2.x weights_only ({sorted(ops - TORCH2_OPS) or "none outside"})')
    outside = sorted(ops - TORCH113_OPS)
    print(f'  info  opcodes outside torch 1.13 weights_only: {outside or "none"}')
    obj = RestrictedUnpickler(data, zf, root).load()
    return obj, outside


# ------------------------------------------------------------------ comparisons

def tensor_bytes(t):
    """Raw little-endian bytes of a torch tensor or numpy array."""
    if isinstance(t, np.ndarray):
        return t.tobytes()
    import torch
    t = t.detach().cpu().contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b''


def shape_of(t):
    return tuple(t.shape)


def compare_state_dict(ck, src):
    model = src.model()
    sd = ck['state_dict']
    check(type(sd).__name__ == 'OrderedDict', 'state_dict is an OrderedDict')
    check(all(k.startswith('module.') for k in sd), 'every state_dict key starts with module.')
    keys = {k[len('module.'):] for k in sd}
    dropped = {k for k in model if k.endswith(('embeddings.position_ids', 'embeddings.token_type_ids'))}
    check(keys == set(model) - dropped, f'state_dict keys = source tensors ({len(keys)})')
    bad = [k for k in keys if k in model and (shape_of(sd['module.' + k]) != model[k][1] or tensor_bytes(sd['module.' + k]) != model[k][2])]
    check(not bad, f'state_dict tensors bitwise equal to the source{": " + ", ".join(bad[:5]) if bad else ""}')


def compare_optimizer_by_content(ck, src):
    opt = ck['optimizer']
    groups = opt['param_groups']
    check(len(groups) == len(src.state['optimizer']['paramGroups']), f'{len(groups)} param groups')
    ids = [i for g in groups for i in g['params']]
    check(ids == list(range(len(ids))), 'param indices 0..n-1, group by group')
    floats = all(isinstance(g[k], float) for g in groups for k in ('lr', 'eps', 'weight_decay')) and all(isinstance(b, float) for g in groups for b in g['betas'])
    check(floats and all(isinstance(g['betas'], tuple) for g in groups), 'lr, eps, weight_decay, betas are Python floats (betas a tuple)')
    model = src.model()
    by_content = {}
    for n in src.state['optimizer']['params']:
        m = src.moments(n)
        if m:
            by_content[m[1]] = (n, m)
    ok = True
    for j, st in opt['state'].items():
        hit = by_content.get(tensor_bytes(st['exp_avg']))
        ok &= hit is not None and shape_of(st['exp_avg']) == model[hit[0]][1] and tensor_bytes(st['exp_avg_sq']) == hit[1][2] and float(np.asarray(st['step'])) == hit[1][0]
    check(ok and len(opt['state']) == len(by_content), f'{len(opt["state"])} optimizer states each equal to one source parameter\'s moments (shape, step, exp_avg, exp_avg_sq)')


# ------------------------------------------------------------------ reference model (torch mode)

def build_reference(cfg):
    sys.modules.setdefault('ftfy', types.SimpleNamespace(fix_text=lambda s: s))  # tokenizer text cleanup only
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg, CustomTextCLIP
    from timm.models import register_model
    from hlip.visual_encoder import custom_create_vision_transformer
    from hlip.patch_embed import PatchEmbed3D

    vc = cfg['vision_cfg']
    trunk = {k: tuple(v) if isinstance(v, list) else v for k, v in vc['hlip_trunk'].items()}
    name = 'hlip_export_check_trunk'

    @register_model
    def hlip_export_check_trunk(pretrained=False, **kwargs):
        args = dict(in_chans=1, num_classes=0, no_embed_class=True, pos_embed='none', embed_layer=PatchEmbed3D, **trunk)
        return custom_create_vision_transformer('vit_base_patch16_224.mae', pretrained=False, **dict(args, **kwargs))

    vision = CLIPVisionCfg(timm_model_name=name, timm_model_pretrained=False, timm_pool=vc.get('timm_pool', 'token'), timm_proj=vc.get('timm_proj', 'linear'))
    text = CLIPTextCfg(**cfg['text_cfg'])
    print(f'  info  reference: open_clip {open_clip.__version__}, CustomTextCLIP(embed_dim={cfg["embed_dim"]}) with HLIPVisualEncoder({trunk})')
    return CustomTextCLIP(cfg['embed_dim'], vision, text)


def check_reference(ck, src, cfg):
    import torch
    model = build_reference(cfg)
    sd = ck['state_dict']
    wrapper = torch.nn.Module()
    wrapper.module = model  # the key layout DistributedDataParallel gives
    r = wrapper.load_state_dict(sd, strict=True)
    check(not r.missing_keys and not r.unexpected_keys, 'strict load into the DDP-wrapped reference model (module. keys)')
    r = model.load_state_dict({k[len('module.'):]: v for k, v in sd.items()}, strict=True)
    check(not r.missing_keys and not r.unexpected_keys, 'strict load with module. removed (open_clip non-distributed resume)')
    srcm = src.model()
    msd = model.state_dict()
    bad = [k for k, v in msd.items() if srcm.get(k) is None or tensor_bytes(v) != srcm[k][2] or shape_of(v) != srcm[k][1]]
    check(not bad and len(msd) == len(srcm), f'reference model.state_dict() identical to the source ({len(msd)} tensors){": " + ", ".join(bad[:5]) if bad else ""}')
    if 'optimizer' not in ck:
        return
    named = list(model.named_parameters())
    exclude = lambda n, p: p.ndim < 2 or 'bn' in n or 'ln' in n or 'bias' in n or 'logit_scale' in n  # hlip-spec §4.3
    no_decay = [p for n, p in named if exclude(n, p) and p.requires_grad]
    decay = [p for n, p in named if not exclude(n, p) and p.requires_grad]
    g = src.state['optimizer']['paramGroups']
    optimizer = torch.optim.AdamW([{'params': no_decay, 'weight_decay': 0.0}, {'params': decay, 'weight_decay': g[1]['weightDecay']}], lr=g[0]['lr'], betas=tuple(g[0]['betas']), eps=g[0]['eps'])
    optimizer.load_state_dict(ck['optimizer'])
    ok, n_state = True, 0
    for n, p in named:
        if not p.requires_grad:
            continue
        want = src.moments(n)
        st = optimizer.state.get(p)
        if want is None:
            ok &= not st
            continue
        n_state += 1
        ok &= st is not None and float(st['step']) == want[0] and tensor_bytes(st['exp_avg']) == want[1] and tensor_bytes(st['exp_avg_sq']) == want[2] and st['exp_avg'].shape == p.shape
        if not ok:
            print(f'  FAIL  moments of {n}')
            break
    check(ok, f'optimizer.load_state_dict: every parameter got its own moments and step by name ({n_state} parameters)')
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p) * 1e-3
    optimizer.step()
    check(all(torch.isfinite(p).all() for p in model.parameters()), 'one AdamW step from the loaded state runs')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('export')
    ap.add_argument('source')
    ap.add_argument('--model-config')
    ap.add_argument('--mode', choices=['auto', 'torch', 'pickle'], default='auto')
    a = ap.parse_args()
    src = Source(a.source)
    mode = a.mode
    if mode == 'auto':
        try:
            import torch  # noqa: F401
            mode = 'torch'
        except ImportError:
            mode = 'pickle'
    print(f'{a.export} against {a.source} ({"training checkpoint" if src.training else "state dict"}), mode {mode}')

    print('(b) zip layout and restricted unpickler (numpy)')
    ck_np, outside_113 = load_restricted(a.export)
    check(list(ck_np)[:3] == ['epoch', 'name', 'state_dict'], f'top-level keys {list(ck_np)}')
    check(isinstance(ck_np['epoch'], int) and isinstance(ck_np['name'], str), f'epoch {ck_np["epoch"]!r} (int), name {ck_np["name"]!r} (str)')
    compare_state_dict(ck_np, src)
    if 'optimizer' in ck_np and src.training:
        compare_optimizer_by_content(ck_np, src)

    if mode == 'torch':
        import torch
        print(f'(a) PyTorch {torch.__version__}')
        try:
            ck = torch.load(a.export, map_location='cpu', weights_only=True)
            check(True, 'torch.load(weights_only=True)')
        except Exception as e:  # noqa: BLE001
            expected = outside_113 == ['BINFLOAT'] and torch.__version__.startswith('1.')
            msg = str(e).split('WeightsUnpickler error: ')[-1]
            if expected:
                print(f'  limit torch.load(weights_only=True) in torch {torch.__version__}: "{msg}" (no BINFLOAT before 2.0: any file with Python floats, such as optimizer param_groups, fails the same way)')
            else:
                check(False, f'torch.load(weights_only=True): {msg}')
            # Safe here: (b) showed the pickle names nothing outside the weights_only allow-list.
            ck = torch.load(a.export, map_location='cpu', weights_only=False)
            print('  info  continuing with torch.load(weights_only=False)')
        check(list(ck)[:3] == ['epoch', 'name', 'state_dict'], 'torch.load: epoch, name, state_dict')
        compare_state_dict(ck, src)
        if a.model_config:
            with open(a.model_config) as f:
                cfg = json.load(f)
            try:
                check_reference(ck, src, cfg)
            except ImportError as e:
                print(f'  skip  reference model: {e} (put open_clip/src, timm and hlip/src on PYTHONPATH)')
    print('PASS' if not failures else f'FAILED: {len(failures)} check(s)')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
