// Bar charts as SVG built node by node (no library, no inline style: the page's CSP allows neither):
// columns for values per day, rows for values per model. Labels are text nodes, never markup.

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export interface Bar {
  label: string;
  value: number;
  /** Shown on hover and next to the bar: the exact figure. */
  text: string;
}

function empty(box: HTMLElement, width: number, height: number): void {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "no data" });
  root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "no usage in this range"));
  box.replaceChildren(root);
}

/** One column per bar (days), a label under every few, the largest value on top. */
export function columns(box: HTMLElement, bars: Bar[], alt = false): void {
  const width = 600;
  const height = 200;
  const max = Math.max(0, ...bars.map((b) => b.value));
  if (bars.length === 0 || max === 0) return empty(box, width, height);
  const top = 16;
  const bottom = 24;
  const step = width / bars.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": box.id });
  const every = Math.max(1, Math.ceil(bars.length / 8));
  bars.forEach((b, i) => {
    const h = ((height - top - bottom) * b.value) / max;
    const rect = svg("rect", { x: i * step + step * 0.15, y: height - bottom - h, width: step * 0.7, height: Math.max(h, b.value > 0 ? 1 : 0), class: alt ? "bar alt" : "bar", "data-label": b.label, "data-value": b.text });
    rect.append(svg("title", {}, `${b.label}: ${b.text}`));
    root.append(rect);
    if (i % every === 0) root.append(svg("text", { x: i * step + step / 2, y: height - 8, "text-anchor": "middle", class: "axis" }, b.label.slice(5)));
  });
  const peak = bars.reduce((a, b) => (b.value > a.value ? b : a));
  root.append(svg("text", { x: 4, y: 11, class: "value" }, `max ${peak.text} (${peak.label})`));
  box.replaceChildren(root);
}

/** One row per bar (models), the label left, the exact figure right of the bar. */
export function rows(box: HTMLElement, bars: Bar[], alt = false): void {
  const width = 600;
  const rowHeight = 22;
  const height = Math.max(60, bars.length * rowHeight + 8);
  const max = Math.max(0, ...bars.map((b) => b.value));
  if (bars.length === 0 || max === 0) return empty(box, width, 60);
  const labelWidth = 170;
  const valueWidth = 120;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": box.id });
  bars.forEach((b, i) => {
    const y = 4 + i * rowHeight;
    const w = ((width - labelWidth - valueWidth) * b.value) / max;
    root.append(svg("text", { x: labelWidth - 6, y: y + 14, "text-anchor": "end", class: "axis" }, b.label.length > 28 ? `${b.label.slice(0, 27)}…` : b.label));
    const rect = svg("rect", { x: labelWidth, y: y + 3, width: Math.max(w, 1), height: rowHeight - 8, class: alt ? "bar alt" : "bar", "data-label": b.label, "data-value": b.text });
    rect.append(svg("title", {}, `${b.label}: ${b.text}`));
    root.append(rect);
    root.append(svg("text", { x: labelWidth + w + 6, y: y + 14, class: "value" }, b.text));
  });
  box.replaceChildren(root);
}
