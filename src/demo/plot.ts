/**
 * Small dependency-free SVG charts for the demo.
 *
 * @module
 */

/** One line of a chart. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}

function nice(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

/** A line chart (with point markers) as an SVG string. */
export function lineChart(
  { title, xLabel, yLabel, series, width = 420, height = 280, scatter = false }: {
    title: string;
    xLabel: string;
    yLabel: string;
    series: Series[];
    width?: number;
    height?: number;
    scatter?: boolean;
  },
): string {
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const pad = (y1 - y0) * 0.08;
  y0 -= pad;
  y1 += pad;
  const L = 56, R = 12, T = 28, B = 40, w = width - L - R, h = height - T - B;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * w,
    sy = (y: number) => T + h - ((y - y0) / (y1 - y0)) * h;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${w}" height="${h}" fill="none" stroke="#888"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4, xv = x0 + ((x1 - x0) * k) / 4;
    parts.push(`<line x1="${L}" x2="${L + w}" y1="${sy(yv)}" y2="${sy(yv)}" stroke="#eee"/>`);
    parts.push(`<text x="${L - 4}" y="${sy(yv) + 4}" text-anchor="end">${nice(yv)}</text>`);
    parts.push(`<text x="${sx(xv)}" y="${T + h + 14}" text-anchor="middle">${nice(xv)}</text>`);
  }
  parts.push(`<text x="${L + w / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(
    `<text x="14" y="${T + h / 2}" text-anchor="middle" transform="rotate(-90 14 ${T + h / 2})">${
      esc(yLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    const d = s.points.map(([x, y], k) => `${k ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    if (!scatter && s.points.length > 1) {
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    }
    for (const [x, y] of s.points) {
      parts.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${s.color}"/>`);
    }
    parts.push(`<rect x="${L + 8}" y="${T + 8 + i * 15}" width="10" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${L + 22}" y="${T + 17 + i * 15}">${esc(s.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
}

/** Several SVG pictures side by side in one SVG. */
export function sideBySide(svgs: { svg: string; width: number; height: number }[], gap = 16): string {
  const W = svgs.reduce((s, p) => s + p.width, 0) + gap * (svgs.length - 1);
  const H = Math.max(...svgs.map((p) => p.height));
  let x = 0;
  const inner = svgs.map((p) => {
    const g = `<g transform="translate(${x},0)">${
      p.svg.replace(/^<svg[^>]*>/, "").replace(/<\/svg>$/, "")
    }</g>`;
    x += p.width + gap;
    return g;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${inner.join("")}</svg>`;
}
