/**
 * Charts (issue 9 §4) with vega-lite (compiled to a vega spec) rendered headless by vega (`renderer: 'none'`,
 * `toSVG()`: no browser, no canvas), and PNG from that SVG by resvg. Generic: panels of lines; src/services/stats.ts
 * decides what they show.
 *
 * Labels come from data (sector and organisation names from registries, CVE ids from feeds): hostile. vega writes
 * every text and attribute through its XML escaper; before that, characters XML cannot carry at all (C0 controls,
 * lone surrogates) and those that change what a reader sees (bidi overrides, ...) are replaced here, so the SVG
 * is always well-formed XML. The spec holds only inline values: vega is never asked to load a URL.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { sanitiseText } from '../../core/text.js';

export interface ChartPoint {
  /** A day (YYYY-MM-DD) on a temporal axis, or a number. */
  readonly x: string | number;
  readonly y: number;
  /** The line this point belongs to (legend label). */
  readonly line: string;
}

export interface ChartPanel {
  readonly title: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly x: 'day' | 'number';
  /** Draw as steps (a survival curve) instead of straight segments. */
  readonly step?: boolean;
  /** y between 0 and 1, shown as a percentage. */
  readonly share?: boolean;
  /** Fixed colours for known lines (CSS colours), in this order in the legend; other lines get the default palette. */
  readonly colors?: ReadonlyArray<readonly [line: string, color: string]>;
  readonly points: readonly ChartPoint[];
}

export interface ChartInput {
  readonly title: string;
  readonly panels: readonly ChartPanel[];
  /** Width of each panel's plot in pixels (default 640). */
  readonly width?: number;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** Legend entries longer than this are cut (a 10 kB organisation name must not make a 10 kB-wide chart). */
const MAX_LABEL = 60;

/** Text that XML can carry and a reader sees as it is (the SVG writer escapes `<`, `&`, quotes itself). */
export function chartText(text: string, max = MAX_LABEL): string {
  return sanitiseText(text.replace(LONE_SURROGATE, '?'), { max });
}

function panelSpec(p: ChartPanel, width: number): Record<string, unknown> {
  const values = p.points.map((pt) => ({ x: pt.x, y: pt.y, line: chartText(pt.line) }));
  return {
    title: chartText(p.title, 120),
    width,
    height: 260,
    data: { values },
    mark: { type: 'line', interpolate: p.step === true ? 'step-after' : 'linear', point: p.points.length <= 60 },
    encoding: {
      x: p.x === 'day'
        ? { field: 'x', type: 'temporal', title: chartText(p.xTitle, 120), axis: { format: '%Y-%m-%d', labelAngle: -30 } }
        : { field: 'x', type: 'quantitative', title: chartText(p.xTitle, 120) },
      y: { field: 'y', type: 'quantitative', title: chartText(p.yTitle, 120), ...(p.share === true ? { axis: { format: '%' }, scale: { domain: [0, 1] } } : {}) },
      color: p.colors === undefined
        ? { field: 'line', type: 'nominal', title: null, sort: null }
        : { field: 'line', type: 'nominal', title: null, scale: { domain: p.colors.map(([l]) => chartText(l)), range: p.colors.map(([, c]) => c) } },
    },
  };
}

/** The chart as an SVG document (UTF-8 text). */
export async function renderSvg(input: ChartInput): Promise<string> {
  const width = input.width ?? 640;
  const lite = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chartText(input.title, 120),
    background: 'white',
    config: { font: 'sans-serif', legend: { labelLimit: 320 } },
    vconcat: input.panels.map((p) => panelSpec(p, width)),
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(lite).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg.startsWith('<?xml') ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}`;
  } finally {
    view.finalize();
  }
}

/** The SVG as PNG (system fonts when there are any; without fonts the text is left out, the lines are drawn). */
export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}
