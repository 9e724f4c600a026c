// Training (browser-safe): schedules, parameter groups, gradient clipping, checkpoints, the Trainer.
// Node file helpers for checkpoints live in ./checkpoint-node.ts (not exported here).
export { cosineLr, constLr, constCooldownLr, makeSchedule, stepsPerEpoch, totalSteps, type LrSchedule, type ScheduleName, type ScheduleOptions } from './schedule.js';
export { paramGroups, createOptimizer, lockTextTower, excludedFromDecay, OPTIMIZER_DEFAULTS, type OptimizerOptions, type ParamGroups, type LockTextOptions } from './param-groups.js';
export { clipGradNorm } from './clip-grad.js';
export {
  encodeCheckpoint, decodeCheckpoint, checkpointChunks, planCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
  type TrainingCheckpoint, type TrainerRngState, type JsonValue,
} from './checkpoint.js';
export {
  Trainer, joinBatches, type TrainBatch, type JoinedBatch, type TrainerOptions, type TrainerState, type StepMetrics, type ForwardContext, type ImageEncoder,
  type LossName, type CheckpointExtras,
} from './trainer.js';
export { GradScaler, type GradScalerOptions, type GradScalerState, type ScaledStep } from './grad-scaler.js';
export { setGradCheckpointing, type Precision } from './trainer.js';
