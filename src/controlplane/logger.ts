import { systemClock, type Clock } from '../clock.js';

/**
 * The structured logger of the control-plane agents (`CONTROL_PLANE_TOKENS.Logger`): one call
 * per event, an event name (`gossip.member.joined`) and flat fields. Tests inject a recording one.
 */
export interface ControlPlaneLogger {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
}

/** Where the default logger writes (process.stderr by default). */
export interface LineSink {
  write(line: string): unknown;
}

/**
 * The default logger: one JSON object per line (`{"time":…,"level":…,"event":…,…fields}`), on
 * stderr unless another sink is given. Fields that JSON cannot carry (bigint, cycles) become text.
 */
export function jsonLinesLogger(sink: LineSink = process.stderr, clock: Clock = systemClock): ControlPlaneLogger {
  const write = (level: 'info' | 'warn', event: string, fields: Record<string, unknown>): void => {
    const record = { time: new Date(clock.now()).toISOString(), level, event, ...fields };
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, event, fields: Object.keys(fields).join(','), note: 'fields not serialisable as JSON' });
    }
    sink.write(`${line}\n`);
  };
  return {
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
  };
}
