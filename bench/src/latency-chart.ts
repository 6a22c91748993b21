import type { RunRecord } from './throughput.js';

/**
 * The latency chart, hand-written SVG: p50 and p99 of ack and delivery latency against the
 * offered open-loop load, the relay beside the ceiling forwarder measured in the same run.
 * Logarithmic latency axis (a saturated relay is seconds, a healthy one milliseconds).
 */

const W = 760;
const H = 440;
const M = { left: 64, right: 190, top: 40, bottom: 52 };

interface Series {
  readonly label: string;
  readonly color: string;
  readonly dash: string;
  readonly points: [number, number][];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders the open-loop runs as an SVG document. */
export function latencyChart(runs: readonly RunRecord[], title: string): string {
  const open = runs.filter((r) => r.mode === 'open' && r.offered !== undefined);
  const series: Series[] = [];
  const add = (system: 'relay' | 'ceiling', metric: 'ack' | 'delivery', q: 'p50' | 'p99', color: string, dash: string): void => {
    const points = open
      .filter((r) => r.system === system)
      .map((r): [number, number] => [r.offered!, r.result[metric][q]])
      .filter(([, y]) => Number.isFinite(y) && y > 0)
      .sort((a, b) => a[0] - b[0]);
    if (points.length > 0) series.push({ label: `${system} ${metric} ${q}`, color, dash, points });
  };
  add('relay', 'ack', 'p99', '#c0392b', '');
  add('relay', 'delivery', 'p99', '#e67e22', '');
  add('relay', 'ack', 'p50', '#c0392b', '5 4');
  add('relay', 'delivery', 'p50', '#e67e22', '5 4');
  add('ceiling', 'ack', 'p99', '#2c3e50', '');
  add('ceiling', 'delivery', 'p99', '#2980b9', '');
  add('ceiling', 'ack', 'p50', '#2c3e50', '5 4');
  add('ceiling', 'delivery', 'p50', '#2980b9', '5 4');

  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, ...xs) * 1.05;
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(1, ...ys))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(10, ...ys)));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): number => M.left + (v / xMax) * pw;
  const y = (v: number): number => M.top + ph - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const f = (n: number): string => n.toFixed(1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  // Grid and axes.
  for (let d = yMin; d <= yMax * 1.0001; d *= 10) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${f(y(d))}" y2="${f(y(d))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${f(y(d) + 4)}" text-anchor="end">${d >= 1 ? d : d.toPrecision(1)}</text>`);
  }
  const step = 10 ** Math.floor(Math.log10(xMax)) / (xMax / 10 ** Math.floor(Math.log10(xMax)) < 3 ? 4 : 1);
  for (let v = 0; v <= xMax; v += step) {
    out.push(`<line x1="${f(x(v))}" x2="${f(x(v))}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${f(x(v))}" y="${M.top + ph + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 12}" text-anchor="middle">offered load (msgs/s, open loop, 1 KiB, two-member groups)</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`);
  // Series.
  series.forEach((s, i) => {
    const d = s.points.map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${f(x(px))} ${f(y(py))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const [px, py] of s.points) out.push(`<circle cx="${f(x(px))}" cy="${f(y(py))}" r="3" fill="${s.color}"><title>${esc(`${s.label}: ${py} ms at ${px}/s`)}</title></circle>`);
    const ly = M.top + 10 + i * 20;
    out.push(`<line x1="${W - M.right + 14}" x2="${W - M.right + 44}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${W - M.right + 50}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  if (series.length === 0) out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph / 2}" text-anchor="middle">no open-loop runs</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
