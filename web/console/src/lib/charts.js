// Small SVG charts drawn from data, no library: a line over time and horizontal bars. Each is an image
// with a text summary for screen readers; the page shows the same numbers in a table beside it.
import { h } from './dom.js';

const width = 640;

export function lineChart({ label, points, formatY, formatX }) {
  const height = 220;
  const pad = { left: 72, right: 16, top: 16, bottom: 36 };
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label });
  svg.append(h('svg:title', {}, label));
  if (points.length === 0) {
    svg.append(h('svg:text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-note' }, 'No samples yet'));
    return svg;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y1 = Math.max(...ys, 1);
  const sx = (x) => pad.left + (x1 === x0 ? (width - pad.left - pad.right) / 2 : ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right));
  const sy = (y) => height - pad.bottom - (y / y1) * (height - pad.top - pad.bottom);
  for (const fraction of [0, 0.5, 1]) {
    const y = sy(y1 * fraction);
    svg.append(h('svg:line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'chart-grid' }));
    svg.append(h('svg:text', { x: pad.left - 8, y: y + 4, 'text-anchor': 'end', class: 'chart-axis' }, formatY(y1 * fraction)));
  }
  svg.append(h('svg:text', { x: pad.left, y: height - 10, class: 'chart-axis' }, formatX(x0)));
  if (x1 !== x0) svg.append(h('svg:text', { x: width - pad.right, y: height - 10, 'text-anchor': 'end', class: 'chart-axis' }, formatX(x1)));
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
  svg.append(h('svg:path', { d: `${path} L${sx(points.at(-1).x).toFixed(1)},${sy(0)} L${sx(points[0].x).toFixed(1)},${sy(0)} Z`, class: 'chart-area' }));
  svg.append(h('svg:path', { d: path, class: 'chart-line' }));
  for (const p of points) {
    svg.append(h('svg:circle', { cx: sx(p.x), cy: sy(p.y), r: 3, class: 'chart-dot' }, h('svg:title', {}, `${formatX(p.x)}: ${formatY(p.y)}`)));
  }
  return svg;
}

export function barChart({ label, bars, formatValue }) {
  const row = 28;
  const labelWidth = 200;
  const valueWidth = 90;
  const height = Math.max(1, bars.length) * row + 8;
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label });
  svg.append(h('svg:title', {}, label));
  if (bars.length === 0) {
    svg.append(h('svg:text', { x: width / 2, y: row - 8, 'text-anchor': 'middle', class: 'chart-note' }, 'Nothing to show'));
    return svg;
  }
  const max = Math.max(...bars.map((b) => b.value), 1);
  const span = width - labelWidth - valueWidth;
  bars.forEach((bar, i) => {
    const y = 4 + i * row;
    const length = Math.max(bar.value > 0 ? 2 : 0, (bar.value / max) * span);
    svg.append(h('svg:text', { x: labelWidth - 8, y: y + row / 2 + 4, 'text-anchor': 'end', class: 'chart-axis' }, bar.label));
    svg.append(h('svg:rect', { x: labelWidth, y: y + 4, width: length.toFixed(1), height: row - 10, rx: 3, class: 'chart-bar' },
      h('svg:title', {}, `${bar.label}: ${formatValue(bar.value)}`)));
    svg.append(h('svg:text', { x: labelWidth + length + 6, y: y + row / 2 + 4, class: 'chart-axis' }, formatValue(bar.value)));
  });
  return svg;
}

/** A ring showing a ratio 0..1 (the cluster's peer hit ratio). */
export function ratioRing({ label, ratio }) {
  const r = 40;
  const circumference = 2 * Math.PI * r;
  const svg = h('svg:svg', { viewBox: '0 0 100 100', class: 'ring', role: 'img', 'aria-label': label });
  svg.append(h('svg:title', {}, label));
  svg.append(h('svg:circle', { cx: 50, cy: 50, r, class: 'ring-track' }));
  svg.append(h('svg:circle', {
    cx: 50, cy: 50, r, class: 'ring-value', transform: 'rotate(-90 50 50)',
    'stroke-dasharray': `${(circumference * ratio).toFixed(2)} ${circumference.toFixed(2)}`,
  }));
  svg.append(h('svg:text', { x: 50, y: 56, 'text-anchor': 'middle', class: 'ring-text' }, `${Math.round(ratio * 100)}%`));
  return svg;
}
