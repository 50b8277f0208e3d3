/** Incident reports (issue 10 §5): intake validation, triage state machine, SLA clocks. Pure. */
export * from './types.js';
export * from './validate.js';
export * from './triage.js';
export * from './sla.js';
