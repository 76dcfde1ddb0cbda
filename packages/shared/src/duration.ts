/** Human durations as octeliumctl accepts them: `30days`, `2hours`, `1week`, `3months`, `90s`, `15m`. */
const UNIT_MS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
  month: 2_592_000_000, months: 2_592_000_000,
  y: 31_536_000_000, year: 31_536_000_000, years: 31_536_000_000,
};

export function parseHumanDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const unit = m ? UNIT_MS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid duration "${text}" (examples: 90s, 15minutes, 2hours, 30days, 1week, 3months)`);
  return Math.round(Number(m[1]) * unit);
}

/** Octelium's Duration message: `{seconds: 10}`, `{milliseconds: 500}`, `{minutes: 1}` … summed. */
export interface DurationSpec { milliseconds?: number; seconds?: number; minutes?: number; hours?: number }
export function durationMs(d: DurationSpec | undefined, fallback: number): number {
  if (!d) return fallback;
  return (d.milliseconds ?? 0) + (d.seconds ?? 0) * 1000 + (d.minutes ?? 0) * 60_000 + (d.hours ?? 0) * 3_600_000;
}
