import { cleanTraceState, formatTraceParent, parseTraceParent } from './trace-context.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C trace context text', () => {
  it('parses and formats a version-00 traceparent', () => {
    const p = parseTraceParent(TP);
    expect(p).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
    expect(formatTraceParent(p!)).toBe(TP);
    expect(formatTraceParent({ ...p!, traceFlags: 0 })).toBe(TP.slice(0, -2) + '00');
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['upper-case hex', TP.toUpperCase()],
    ['all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['all-zero span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['version ff', 'ff' + TP.slice(2)],
    ['version 00 with extra fields', TP + '-extra'],
    ['short span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01'],
  ])('ignores a malformed traceparent (%s)', (_what, v) => {
    expect(parseTraceParent(v)).toBeNull();
  });

  it('accepts a later version with extra fields (forward compatible)', () => {
    expect(parseTraceParent('01' + TP.slice(2) + '-what-ever')).toMatchObject({ spanId: '00f067aa0ba902b7' });
  });

  it('keeps a printable tracestate up to 512 characters only', () => {
    expect(cleanTraceState('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(cleanTraceState('a=' + 'x'.repeat(600))).toBeNull();
    expect(cleanTraceState('a=b\nc=d')).toBeNull();
    expect(cleanTraceState('')).toBeNull();
  });
});
