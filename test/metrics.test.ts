// Metrics, benchmark metadata and score evaluation: pure TypeScript, runs in Node and Chromium.
// Expected values are hand-computed (derivations in comments) or, where marked, scikit-learn 1.9.1 /
// NumPy 2.4.6 outputs for the literal inputs; comparisons are exact (toBe), as the reference's numbers are.
import { describe, expect, it } from 'vitest';
import { FormatError, HlipError } from '../src/errors.js';
import * as M from '../src/eval/metrics.js';
import {
  BENCHMARKS, BENCHMARK_NAMES, CT_RATE_CLASSES, RAD_CHESTCT_CLASSES, caseId, caseIdCandidates, parseLabels, zeroShotPrompts,
} from '../src/eval/benchmarks.js';
import { evaluateScores, formatScoreEval, parseScores } from '../src/eval/score-metrics.js';
import { parseCsv } from '../src/eval/csv.js';

describe('NumPy reductions', () => {
  it('npSum is pairwise (8 accumulators), not left-to-right', () => {
    // n = 9: r0..r7 = a[0..7]; ((1+1e16)+(1+1))+((1+1)+(1+1)) = 1e16+6 (1e16+1 rounds to 1e16), then −1e16 → 6.
    const a = [1, 1e16, 1, 1, 1, 1, 1, 1, -1e16];
    expect(M.npSum(a)).toBe(6);
    expect(a.reduce((x, y) => x + y, 0)).toBe(0);
    expect(M.npSum([])).toBe(0);
    expect(M.npSum([0.5, 0.25])).toBe(0.75);
  });

  it('npMean, npNanMean and the 2025 scripts sequential mean differ as in Python', () => {
    expect(M.npMean([0.1, 0.2, 0.3])).toBe(0.20000000000000004); // np.mean
    expect(M.sequentialMean([0.1, 0.2, 0.3])).toBe(0.2); // m += x / 3
    expect(M.npNanMean([NaN, 1, 2, NaN])).toBe(1.5);
    expect(M.npNanMean([NaN])).toBeNaN();
    expect(M.npMean([])).toBeNaN();
  });

  it('linspace(0, 1, 100) is i * (1/99) with the end pinned to 1', () => {
    const t = M.linspace(0, 1, 100);
    expect(t.length).toBe(100);
    expect(t[0]).toBe(0);
    expect(t[1]).toBe(1 / 99);
    expect(t[50]).toBe(50 * (1 / 99));
    expect(t[99]).toBe(1);
  });
});

describe('ROC curve and AUC', () => {
  // sklearn's documented example.
  const y = [0, 0, 1, 1];
  const s = [0.1, 0.4, 0.35, 0.8];

  it('roc_curve points of the sklearn example', () => {
    const r = M.rocCurve(y, s);
    expect(Array.from(r.fpr)).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(Array.from(r.tpr)).toEqual([0, 0.5, 0.5, 1, 1]);
    expect(Array.from(r.thresholds)).toEqual([Infinity, 0.8, 0.4, 0.35, 0.1]);
    expect(M.rocAuc(y, s)).toBe(0.75);
  });

  it('drops collinear points like drop_intermediate=True', () => {
    // fps = [0,0,0,1,2,3], tps = [1,2,3,3,3,3]: only the corner (index 2) and the ends survive.
    const r = M.rocCurve([1, 1, 1, 0, 0, 0], [6, 5, 4, 3, 2, 1]);
    expect(Array.from(r.fpr)).toEqual([0, 0, 0, 1]);
    expect(Array.from(r.tpr)).toEqual([0, 1 / 3, 1, 1]);
    expect(Array.from(r.thresholds)).toEqual([Infinity, 6, 4, 1]);
    expect(M.rocCurve([1, 1, 1, 0, 0, 0], [6, 5, 4, 3, 2, 1], false).fpr.length).toBe(7);
  });

  it('ties count one half (average ranks)', () => {
    // Pairs (neg, pos): (.2,.5) 1, (.2,.9) 1, (.5,.5) ½, (.5,.9) 1 → 3.5 / 4.
    expect(M.rocAuc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9])).toBe(0.875);
    expect(M.rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
    expect(M.rocAuc([1, 0], [0, 1])).toBe(0);
  });

  it('matches sklearn 1.9.1 on a 40-sample case with ties', () => {
    const yy = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const ss = [1.07, 0.57, 0.46, 0.79, 0.47, 0.2, 0.57, 0.58, 0.83, 1.24, 0.07, 0.95, 1.11, 0.95, 0.07, 1.05, 0.78, 1.09, 0.11, 1.23, 0.55, 0.41, 0.02, 0.04, 0.63, 0.76, 0.23, 0.7, 0.92, 0.36, 0.57, 0.1, 0.38, 0.5, 0.89, 0.36, 0.49, 0.62, 0.71, 0.76];
    expect(M.rocAuc(yy, ss)).toBe(0.7857142857142857);
    expect(M.rocCurve(yy, ss).fpr.length).toBe(20);
    const a = M.thresholdPredictions(ss, 0.5);
    expect(M.balancedAccuracy(yy, a)).toBe(0.6203007518796992);
    expect(M.weightedF1(yy, a)).toBe(0.6214285714285713);
    expect(M.recall(yy, a)).toBe(0.7142857142857143);
    expect(M.precision(yy, a)).toBe(0.625);
  });

  it('one class: rocAuc throws MetricError (sklearn raises), rocAucOrNaN gives NaN', () => {
    expect(() => M.rocAuc([1, 1, 1], [0.1, 0.2, 0.3])).toThrow(M.MetricError);
    expect(() => M.rocAuc([0, 0], [0.1, 0.2])).toThrow(/only one class/);
    expect(M.rocAucOrNaN([0, 0], [0.1, 0.2])).toBeNaN();
    expect(() => M.rocCurve([0, 0], [0.1, 0.2])).toThrow(/no positive samples/);
    expect(() => M.macroRocAuc([[0, 1], [1, 1]], [[0.1, 0.2], [0.3, 0.4]])).toThrow(/column 1/);
    expect(M.macroRocAuc([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]])).toBe(0.5); // mean(1, 0)
  });

  it('rejects NaN scores, non-binary labels and length mismatches', () => {
    expect(() => M.rocAuc([0, 1], [0.1, NaN])).toThrow(M.MetricError);
    expect(() => M.rocAuc([0, 2], [0.1, 0.2])).toThrow(/0 or 1/);
    expect(() => M.rocAuc([0, 1], [0.1])).toThrow(/2 labels but 1 scores/);
    expect(() => M.fvlmThreshold([0, 1], [Infinity, 0])).toThrow(M.MetricError);
  });
});

describe('hard-prediction metrics', () => {
  it('binary: accuracy, weighted F1, recall, precision, balanced accuracy', () => {
    const y = [0, 0, 1, 1];
    const p = [0, 0, 0, 1];
    expect(M.accuracy(y, p)).toBe(0.75);
    expect(M.recall(y, p)).toBe(0.5);
    expect(M.precision(y, p)).toBe(1);
    expect(M.balancedAccuracy(y, p)).toBe(0.75); // (1 + 0.5) / 2
    // F1 per label from counts: label 0: 2·2/(2+3) = 0.8; label 1: 2·1/(2+1) = 2/3; weights 2, 2.
    expect(M.weightedF1(y, p)).toBe((0.8 * 2 + (2 / 3) * 2) / 4);
  });

  it('zero_division gives 0; labels only predicted are dropped from balanced accuracy', () => {
    expect(M.precision([0, 1], [0, 0])).toBe(0);
    expect(M.recall([0, 0], [1, 0])).toBe(0);
    expect(M.balancedAccuracy([0, 0, 1, 1], [0, 2, 1, 1])).toBe(0.75); // recalls 1/2, 1; class 2 not in y_true
    expect(M.balancedAccuracy([0, 0], [0, 1])).toBe(0.5);
    expect(M.balancedAccuracy([1, 1], [1, 1])).toBe(1);
  });

  it('multi-class weighted F1 and balanced accuracy', () => {
    // labels 0: f=1 (w1); 1: f=0 (w1); 2: tp1, true2, pred2 → 0.5 (w2) → (1 + 0 + 1) / 4.
    expect(M.weightedF1([0, 1, 2, 2], [0, 2, 2, 1])).toBe(0.5);
    expect(M.balancedAccuracy([0, 1, 2, 2], [0, 2, 2, 1])).toBe(0.5); // (1 + 0 + 0.5) / 3
  });

  it('argmax takes the first maximum; softmax is normalised', () => {
    expect(M.argmax([0.5, 0.5])).toBe(0);
    expect(M.argmax([0.1, 0.7, 0.7])).toBe(1);
    const p = M.softmax([0, Math.log(3)]);
    expect(p[0]).toBeCloseTo(0.25, 15);
    expect(p[1]).toBeCloseTo(0.75, 15);
    expect(Array.from(M.softmax([1000, 1000]))).toEqual([0.5, 0.5]);
  });
});

describe('fVLM threshold rule', () => {
  it('picks the LAST grid value minimising sqrt((1−TPR)² + FPR²) with score > t', () => {
    // y=[0,0,1,1], s=[.1,.4,.35,.8]: d = 0.5 on [.1,.35) (TPR 1, FPR ½) and on [.4,.8) (TPR ½, FPR 0);
    // the last grid point below 0.8 is 79/99.
    const r = M.fvlmThreshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    expect(r.threshold).toBe(79 * (1 / 99));
    expect(r.distance).toBe(0.5);
    expect(Array.from(M.thresholdPredictions([0.1, 0.4, 0.35, 0.8], r.threshold))).toEqual([0, 0, 0, 1]);
  });

  it('perfect separation: t* is the last grid point below the positive scores', () => {
    const r = M.fvlmThreshold([0, 1, 0, 1], [0.1, 0.9, 0.1, 0.9]);
    expect(r.threshold).toBe(89 * (1 / 99));
    expect(r.distance).toBe(0);
  });

  it('one-class labels: throws where the reference raises IndexError, else returns t = 0', () => {
    expect(() => M.fvlmThreshold([0, 0, 0], [0.2, 0.5, 0.9])).toThrow(/IndexError/);
    expect(() => M.fvlmThreshold([1, 1], [0.2, 0.5])).toThrow(M.MetricError);
    // All positive with a score ≤ 0: every grid t predicts both classes or none; FPR is 0/0 → NaN, never chosen.
    const r = M.fvlmThreshold([1, 1], [-0.2, 0.5]);
    expect(r.threshold).toBe(0);
    expect(r.distance).toBeNaN();
  });
});

describe('benchmark metadata', () => {
  it('class lists', () => {
    expect(BENCHMARK_NAMES).toEqual(['ct-rate', 'rad-chestct', 'pub-brain-5', 'mr-rate', 'rsna', 'cq500']);
    expect(CT_RATE_CLASSES.length).toBe(16);
    expect(RAD_CHESTCT_CLASSES.length).toBe(14);
    expect(RAD_CHESTCT_CLASSES[13]).toBe('Calcification');
    expect(RAD_CHESTCT_CLASSES).not.toContain('Mosaic attenuation pattern');
    expect(BENCHMARKS['mr-rate'].classes.length).toBe(37);
    expect(BENCHMARKS['mr-rate'].classes[21]).toBe("Rathke's pouch cyst");
    expect(BENCHMARKS.rsna.classes).toEqual(['Any', 'Epidural', 'Intraparenchymal', 'Intraventricular', 'Subarachnoid', 'Subdural']);
    expect(BENCHMARKS.cq500.classes.length).toBe(11);
    expect(BENCHMARKS['pub-brain-5'].classes).toEqual(['Normal', 'Stroke', 'Glioma', 'Meningioma', 'Metastasis']);
  });

  it('2025 chest-CT prompt pairs, volume and organ templates', () => {
    const v = zeroShotPrompts('ct-rate', '2025');
    expect(v.scoring).toBe('pair-softmax');
    expect(v.classes.length).toBe(16);
    const get = (set: typeof v, c: string) => set.classes.find((x) => x.name === c)!.columns;
    expect(get(v, 'Emphysema')).toEqual([['The volume shows: Not emphysema.'], ['The volume shows: Emphysema.']]);
    expect(get(v, 'Atelectasis')).toEqual([['The volume shows: Not atelectatic.'], ['The volume shows: Atelectasis.']]);
    expect(get(v, 'Lung nodule')).toEqual([['The volume shows: Not lung nodule.'], ['The volume shows: Lung nodule.']]);
    expect(get(v, 'Lung opacity')).toEqual([['The volume shows: Not lung opacity.'], ['The volume shows: Lung opacity.']]);
    const o = zeroShotPrompts('ct-rate', '2025', { ctTemplate: 'organ' });
    expect(get(o, 'Lung nodule')).toEqual([['The lung shows: Not nodule.'], ['The lung shows: Nodule.']]);
    expect(get(o, 'Hiatal hernia')).toEqual([['The esophagus shows: Not hiatal hernia.'], ['The esophagus shows: Hiatal hernia.']]);
    expect(get(o, 'Arterial wall calcification')[1]).toEqual(['The aorta shows: Arterial wall calcification.']);
    expect(get(o, 'Cardiomegaly')[0]).toEqual(['The heart shows: Not cardiomegaly.']);
    const r = zeroShotPrompts('rad-chestct', '2025');
    expect(r.classes.length).toBe(15);
    expect(r.classes.map((c) => c.name)).toContain('Coronary artery wall calcification');
  });

  it('2026 templates (including the reference typo) and Pub-Brain-5 special case', () => {
    const r = zeroShotPrompts('rad-chestct', '2026');
    expect(r.scoring).toBe('cosine');
    expect(r.classes.map((c) => c.name)).toEqual([...RAD_CHESTCT_CLASSES]);
    expect(r.classes[13]!.columns).toEqual([[
      'This study shows: there is Calcification.', 'This study shows: Calcification is observed.',
      'This study shows: Calcification is present.', 'This study shows: onsistent with Calcification.',
      'This study shows: compatible with Calcification.',
    ]]);
    const m = zeroShotPrompts('mr-rate', '2026');
    const g = m.classes.find((c) => c.name === 'Glioma')!.columns[0]!;
    expect(g.length).toBe(18);
    expect(g[0]).toBe('This study shows: Glioma.');
    expect(g[1]).toBe('This study shows: Glioma identified.');
    expect(g[3]).toBe('This study shows: Glioma seen.');
    expect(g[4]).toBe('This study shows: new Glioma.');
    expect(g[13]).toBe('This study shows: indicative of Glioma.');
    expect(g[17]).toBe('This study shows: compatible with Glioma.');
    const rs = zeroShotPrompts('rsna');
    expect(rs.protocol).toBe('2026');
    expect(rs.classes[0]).toEqual({ name: 'Any', columns: [expect.arrayContaining(['This study shows: intracranial hemorrhage.'])] });
    expect(zeroShotPrompts('cq500').classes[4]!.columns[0]![6]).toBe('This study shows: prominent extradural hemorrhage.');
    const p = zeroShotPrompts('pub-brain-5', '2026');
    expect(p.scoring).toBe('scaled-logits');
    expect(p.classes[0]!.columns[0]).toEqual(Array(18).fill('This study shows: no significant abnormalities.'));
    expect(p.classes[2]!.columns[0]![5]).toBe('This study shows: known glioma.');
    const p25 = zeroShotPrompts('pub-brain-5', '2025');
    expect(p25.classes.map((c) => c.columns[0]![0])).toEqual([
      'This MRI study shows: No significant abnormalities.', 'This MRI study shows: Acute stroke.', 'This MRI study shows: Glioma.',
      'This MRI study shows: Meningioma.', 'This MRI study shows: Metastasis.',
    ]);
    expect(() => zeroShotPrompts('mr-rate', '2025')).toThrow(HlipError);
  });

  it('case ids: file name without directories and extensions', () => {
    expect(caseId('valid_1_a_1.nii.gz')).toBe('valid_1_a_1');
    expect(caseId('/nfs/data/rad_chestct/tst34780.pt')).toBe('tst34780');
    expect(caseId('/data/pub_brain_5/stroke/sub-b74a5032/')).toBe('sub-b74a5032');
    expect(caseId('C:\\data\\cq500\\CQ500CT001')).toBe('CQ500CT001');
    expect(caseId('RSNA_ID_b7d0400331/1.2.840.113619')).toBe('1.2.840.113619'); // dots that are no extension stay
    expect(caseIdCandidates('/r/RSNA_ID_b7d0400331/1.2.3')).toEqual(['1.2.3', 'RSNA_ID_b7d0400331', 'ID_b7d0400331', 'r']);
  });
});

describe('label files', () => {
  const rad = [
    'NoteAcc_DEID,Emphysema,Atelectasis,Lung nodule,Lung opacity,Pulmonary fibrotic sequela,Pleural effusion,Peribronchial thickening,Consolidation,Bronchiectasis,Interlobular septal thickening,Cardiomegaly,Pericardial effusion,Hiatal hernia,Coronary artery wall calcification,Arterial wall calcification',
    'tst1,0.0,0.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0',
    'tst2,1.0,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0',
  ].join('\n');

  it('Rad-ChestCT: two calcification columns become the 14th class (coronary column)', () => {
    const t = parseLabels('rad-chestct', rad, 'rad.csv');
    expect(t.classes).toEqual([...RAD_CHESTCT_CLASSES]);
    expect(t.ids).toEqual(['tst1', 'tst2']);
    expect(Array.from(t.values.slice(0, 14))).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(t.values.slice(14))).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const direct = parseLabels('rad-chestct', rad.replace('Arterial wall calcification', 'Calcification').replace('1.0,1.0\n', '1.0,0.0\n'), 'rad2.csv');
    expect(direct.values[13]).toBe(0); // the file's own Calcification column wins
  });

  it('CQ500 and RSNA in the 2026 formats; extra columns ignored', () => {
    const cq = parseLabels('cq500', 'study,ICH,IPH,IVH,SDH,EDH,SAH,BleedLocation-Left,BleedLocation-Right,ChronicBleed,Fracture,CalvarialFracture,OtherFracture,MassEffect,MidlineShift,Anomaly\nCQ500CT001,1,1,0,0,0,1,1,1,0,0,0,0,1,1,1\n', 'cq500.csv');
    expect(cq.classes.length).toBe(11);
    expect(Array.from(cq.values)).toEqual([1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1]);
    const rs = parseLabels('rsna', 'study,Any,Epidural,Intraparenchymal,Intraventricular,Subarachnoid,Subdural\r\nID_b7d0400331,1,0,1,1,1,1\r\n', 'rsna.csv');
    expect(Array.from(rs.values)).toEqual([1, 0, 1, 1, 1, 1]);
  });

  it('typed errors name the file, line and column', () => {
    expect(() => parseLabels('rsna', 'id,Any\nx,1\n', 'r.csv')).toThrow(/r\.csv: no 'study' column/);
    expect(() => parseLabels('rsna', 'study,Any,Epidural\nx,1,0\n', 'r.csv')).toThrow(/missing label column\(s\): Intraparenchymal/);
    const bad = 'study,Any,Epidural,Intraparenchymal,Intraventricular,Subarachnoid,Subdural\na,1,0,1,1,1,1\nb,1,0,0.5,1,1,1\n';
    expect(() => parseLabels('rsna', bad, 'r.csv')).toThrow(FormatError);
    expect(() => parseLabels('rsna', bad, 'r.csv')).toThrow(/r\.csv: line 3, column 'Intraparenchymal'/);
    expect(() => parseLabels('rsna', bad.replace('\nb,', '\na,').replace('0.5', '1'), 'r.csv')).toThrow(/both have case id 'a'/);
  });

  it('CSV reader: quotes, escaped quotes, CRLF, BOM, field-count check', () => {
    const t = parseCsv('\ufeffa,b\r\n"x,1","say ""hi"""\n\n', 'q.csv');
    expect(t.header).toEqual(['a', 'b']);
    expect(t.rows).toEqual([['x,1', 'say "hi"']]);
    expect(() => parseCsv('a,b\n1\n', 'q.csv')).toThrow(/q\.csv: line 2: 1 fields/);
  });
});

describe('metrics from scores', () => {
  // Six cases, hand-computable RSNA: scores rank positives first except one swap.
  const rsnaLabels = [
    'study,Any,Epidural,Intraparenchymal,Intraventricular,Subarachnoid,Subdural',
    'ID_a,1,1,0,0,0,1',
    'ID_b,1,0,1,0,0,0',
    'ID_c,0,0,0,0,0,0',
    'ID_d,0,0,0,1,0,1',
  ].join('\n');
  const rsnaScores = [
    'case,intracranial hemorrhage,epidural hemorrhage,intraparenchymal hemorrhage,intraventricular hemorrhage,subarachnoid hemorrhage,subdural hemorrhage',
    '/d/RSNA_ID_a/1.2.3,0.9,0.8,0.1,0.1,0.5,0.7',
    '/d/RSNA_ID_a/1.2.4,0.8,0.2,0.1,0.1,0.5,0.6',
    '/d/RSNA_ID_b/9.9,0.7,0.3,0.9,0.2,0.5,0.1',
    '/d/RSNA_ID_c/1,0.1,0.4,0.2,0.3,0.5,0.2',
    '/d/RSNA_ID_d/2,0.85,0.1,0.3,0.6,0.5,0.9',
  ].join('\n');

  it('RSNA: every series is a case; per-class AUC and macro AUC (undefined when a column has one class)', () => {
    const r = evaluateScores('rsna', parseLabels('rsna', rsnaLabels, 'rsna.csv'), parseScores(rsnaScores, 's.csv'));
    expect(r.n_cases).toBe(5);
    expect(r.n_labels_unscored).toBe(0);
    // Any: positives a1 .9, a2 .8, b .7; negatives c .1, d .85 → pairs won: a1 2, a2 1, b 1 → 4/6.
    expect(r.per_class.Any!.auc).toBe(4 / 6);
    // Epidural: positives a1 .8, a2 .2; negatives b .3, c .4, d .1 → a1 wins 3, a2 wins 1 → 4/6, which the
    // trapezoid sum rounds up by one ulp (sklearn 1.9.1 gives 0.6666666666666667 too).
    expect(r.per_class.Epidural!.auc).toBe(0.6666666666666667);
    // Subarachnoid has no positive case → undefined, and so is sklearn's macro AUC.
    expect(r.per_class.Subarachnoid!.auc).toBeNaN();
    expect(r.macro_auc).toBeNaN();
    expect(JSON.parse(JSON.stringify(r)).macro_auc).toBeNull();
    expect(formatScoreEval(r)).toMatch(/macro AUC: n\/a/);
  });

  it('Rad-ChestCT 2025: calcification merge and the reference averages', () => {
    // Labels: 4 cases; every class has labels [1,0,1,0]. Scores: positives 0.9/0.6, negatives 0.3/0.7.
    const head = ['NoteAcc_DEID', ...RAD_CHESTCT_CLASSES.slice(0, 13), 'Coronary artery wall calcification', 'Arterial wall calcification'];
    const lab = [head.join(','), ...['t1,1', 't2,0', 't3,1', 't4,0'].map((r) => r + (',' + r.split(',')[1]).repeat(14))].join('\n');
    const sc = (v: number[]) => v.join(',');
    const scores = [
      ['recon', ...head.slice(1)].join(','),
      `/x/t1.pt,${sc(Array(13).fill(0.9))},0.2,0.9`, // merged: 0.9 (max, one > 0.5), pred 1
      `/x/t2.pt,${sc(Array(13).fill(0.3))},0.3,0.4`, // merged: 0.3 (min), pred 0
      `/x/t3.pt,${sc(Array(13).fill(0.6))},0.45,0.2`, // merged: 0.2 (min), pred 0
      `/x/t4.pt,${sc(Array(13).fill(0.7))},0.1,0.55`, // merged: 0.55 (max), pred 1
    ].join('\n');
    const r = evaluateScores('rad-chestct', parseLabels('rad-chestct', lab, 'l.csv'), parseScores(scores, 's.csv'));
    expect(r.protocol).toBe('2025');
    expect(Object.keys(r.per_class)).toEqual([...RAD_CHESTCT_CLASSES]);
    // Plain classes: y=[1,0,1,0], s=[.9,.3,.6,.7]: .9 beats both negatives, .6 beats .3 only → 3/4.
    const e = r.per_class.Emphysema!;
    expect(e.auc).toBe(0.75);
    // t*: [.3,.6) → TPR 1, FPR ½ (d ½); [.7,.9) → TPR ½, FPR 0 (d ½); last: 89/99.
    expect(e.threshold).toBe(89 * (1 / 99));
    expect(e.accuracy).toBe(0.75);
    expect(e.recall).toBe(0.5);
    expect(e.precision).toBe(1);
    // argmax (s > .5): [1,0,1,1] → recalls 1 (pos), ½ (neg).
    expect(e.balanced_accuracy).toBe(0.75);
    expect(e.argmax_recall).toBe(1);
    expect(e.argmax_precision).toBe(2 / 3);
    // Merged calcification: s=[.9,.3,.2,.55], pred=[1,0,0,1]; .9 beats .3 and .55, .2 beats none → 2/4.
    const c = r.per_class.Calcification!;
    expect(c.auc).toBe(0.5);
    expect(c.balanced_accuracy).toBe(0.5);
    expect(c.argmax_precision).toBe(0.5);
    const aucs = Object.values(r.per_class).map((m) => m.auc!);
    expect(r.macro_auc).toBe(M.sequentialMean(aucs));
    expect(r.macro.balanced_accuracy).toBe(M.sequentialMean(Object.values(r.per_class).map((m) => m.balanced_accuracy!)));
    expect(r.macro.threshold).toBeUndefined();
    // The 2026 protocol scores one Calcification column; two columns are refused.
    expect(() => evaluateScores('rad-chestct', parseLabels('rad-chestct', lab, 'l.csv'), parseScores(scores, 's.csv'), { protocol: '2026' })).toThrow(/Calcification/);
  });

  it('Pub-Brain-5 2025 per-task files (detection and tumour) as the reference writes them', () => {
    const lab = parseLabels('pub-brain-5', [
      'study,Normal,Stroke,Glioma,Meningioma,Metastasis',
      '/data/pub_brain_5/stroke/sub-1,0,1,0,0,0',
      '/data/pub_brain_5/stroke/sub-2,0,1,0,0,0',
      '/data/pub_brain_5/open_bhb/sub-3,1,0,0,0,0',
      '/data/pub_brain_5/open_bhb/sub-4,1,0,0,0,0',
      '/data/pub_brain_5/brats23/train/adult_glioma/BraTS-GLI-1,0,0,1,0,0',
      '/data/pub_brain_5/brats23/train/meningioma/BraTS-MEN-2,0,0,0,1,0',
      '/data/pub_brain_5/nyu_mets/NYU_Mets_3,0,0,0,0,1',
    ].join('\n'), 'pub_brain_5.csv');
    // stroke_detection: y=[1,1,0,0], p=[.9,.4,.6,.1]: AUC (2+1)/4; predictions [1,0,1,0] → every rate ½.
    const det = 'study,stroke\n/data/pub_brain_5/stroke/sub-1,0.9\n/data/pub_brain_5/stroke/sub-2,0.4\n/data/pub_brain_5/open_bhb/sub-3,0.6\n/data/pub_brain_5/open_bhb/sub-4,0.1\n';
    const d = evaluateScores('pub-brain-5', lab, parseScores(det, 'stroke_detection_template_prompt.csv'));
    expect(d.per_class).toEqual({ Stroke: { auc: 0.75, balanced_accuracy: 0.5, weighted_f1: 0.5, recall: 0.5, precision: 0.5 } });
    expect(d.macro_auc).toBe(0.75);
    expect(d.n_labels_unscored).toBe(3);
    // tumor_classification: argmax [G, M, G] vs [G, M, T] → recalls 1, 1, 0; column AUCs 1, 1, 0.
    const tum = 'study,Glioma,Meningioma,Metastasis\nBraTS-GLI-1,0.7,0.2,0.1\nBraTS-MEN-2,0.3,0.6,0.1\nNYU_Mets_3,0.5,0.1,0.05\n';
    const t = evaluateScores('pub-brain-5', lab, parseScores(tum, 'tumor_classification_template_prompt.csv'));
    expect(t.tasks!.tumor).toEqual({ n_cases: 3, metrics: { balanced_accuracy: 2 / 3, auc: 2 / 3 } });
    expect(t.per_class).toEqual({ Glioma: { auc: 1 }, Meningioma: { auc: 1 }, Metastasis: { auc: 0 } });
    // The 2026 protocol has no per-task files: the five class columns are required.
    expect(() => evaluateScores('pub-brain-5', lab, parseScores(det, 'd.csv'), { protocol: '2026' })).toThrow(/missing score column\(s\) 'Normal'/);
  });

  it('typed errors: missing ids, missing columns, NaN scores, one-class labels', () => {
    const labels = parseLabels('rsna', rsnaLabels, 'rsna.csv');
    const missing = rsnaScores.replace('RSNA_ID_c/1', 'RSNA_ID_zz/1');
    expect(() => evaluateScores('rsna', labels, parseScores(missing, 'scores.csv'))).toThrow(/scores\.csv: 1 of 5 score rows have no case in the labels file rsna\.csv.*RSNA_ID_zz/);
    const noCol = rsnaScores.replace('subdural hemorrhage', 'something else');
    expect(() => evaluateScores('rsna', labels, parseScores(noCol, 'scores.csv'))).toThrow(/scores\.csv: missing score column\(s\) 'Subdural'/);
    const nan = rsnaScores.replace('0.85,0.1', 'NaN,0.1');
    expect(() => evaluateScores('rsna', labels, parseScores(nan, 'scores.csv'))).toThrow(/scores\.csv: line 6, column 'intracranial hemorrhage': score 'NaN'/);
    const dup = rsnaScores.replace('RSNA_ID_a/1.2.4', 'RSNA_ID_a/1.2.3');
    expect(() => evaluateScores('rsna', labels, parseScores(dup, 'scores.csv'))).toThrow(/both score/);
    // 2025 chest CT with a one-class column: the reference crashes in find_threshold → MetricError naming the class.
    const head = ['NoteAcc_DEID', ...RAD_CHESTCT_CLASSES];
    const lab = [head.join(','), 't1' + ',1'.repeat(14), 't2,0,1' + ',0'.repeat(12)].join('\n'); // Atelectasis: all 1
    const sc = [head.join(','), 't1' + ',0.6'.repeat(14), 't2' + ',0.4'.repeat(14)].join('\n');
    expect(() => evaluateScores('rad-chestct', parseLabels('rad-chestct', lab, 'l.csv'), parseScores(sc, 's.csv'))).toThrow(/class 'Atelectasis'.*IndexError/);
  });
});
