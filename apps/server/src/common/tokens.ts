/** Nest injection tokens (explicit, so no design-type metadata is needed). */
export const CONFIG = Symbol('CONFIG');
export const TASK_STORE = Symbol('TASK_STORE');
export const LOGGER = Symbol('LOGGER');
export const CLOCK = Symbol('CLOCK');
export const TOPIC_STORE = Symbol('TOPIC_STORE');
export const SCHEDULE_STORE = Symbol('SCHEDULE_STORE');

/** Time source; tests can inject their own. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
