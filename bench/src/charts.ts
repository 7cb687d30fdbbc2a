// Charts as SVG, drawn by Vega-Lite (compiled to Vega and rendered headless; no canvas).

import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { ExprRef } from "vega-lite/types_unstable/expr.js";
import type { Header } from "vega-lite/types_unstable/header.js";

export interface Bar {
  readonly group: string;
  readonly system: string;
  readonly value: number;
}

/** One facet row per group, in the order given (the scenarios' order), not alphabetically: "10,000 keys" after "100 keys". */
function groupRows(items: readonly { readonly group: string }[], header: Header<ExprRef>) {
  return {
    field: "group",
    type: "nominal" as const,
    title: null,
    sort: [...new Set(items.map((i) => i.group))],
    header,
  };
}

/** Grouped horizontal bars: one row per group, one colour per system. */
export async function barChart(title: string, unit: string, bars: readonly Bar[]): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 560,
    data: { values: bars.map((b) => ({ ...b })) },
    mark: "bar",
    encoding: {
      row: groupRows(bars, { labelAngle: 0, labelAlign: "left" }),
      y: { field: "system", type: "nominal", title: null, axis: { labels: false, ticks: false } },
      x: { field: "value", type: "quantitative", title: unit },
      color: { field: "system", type: "nominal", title: null, legend: { orient: "bottom", columns: 2, labelLimit: 0 } },
    },
  };
  return render(spec);
}

export interface Part {
  readonly group: string;
  readonly system: string;
  readonly part: string;
  readonly value: number;
}

/** Stacked horizontal bars: one bar per system within each group, one colour per part. */
export async function stackedBarChart(title: string, unit: string, parts: readonly Part[]): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 420,
    data: { values: parts.map((p) => ({ ...p })) },
    mark: "bar",
    encoding: {
      row: groupRows(parts, { labelAngle: 0, labelOrient: "top", labelAnchor: "start", labelFontWeight: "bold" }),
      y: {
        field: "system",
        type: "nominal",
        title: null,
        sort: [...new Set(parts.map((p) => p.system))],
        axis: { labelLimit: 400 },
      },
      x: { field: "value", type: "quantitative", title: unit, stack: "zero" },
      color: {
        field: "part",
        type: "nominal",
        title: null,
        sort: [...new Set(parts.map((p) => p.part))],
        legend: { orient: "bottom", columns: 3, labelLimit: 0 },
      },
    },
    // Each group its own systems and its own scale: 100 B items cost far more per MB than 1 KiB.
    resolve: { scale: { x: "independent", y: "independent" } },
  };
  return render(spec);
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export interface Point {
  readonly series: string;
  readonly x: number;
  readonly y: number;
}

/** Lines, one colour per series; a logarithmic x axis shows growth in log n as a straight line. */
export async function lineChart(
  title: string,
  xTitle: string,
  yTitle: string,
  points: readonly Point[],
  options: { readonly logX?: boolean } = {},
): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 560,
    height: 240,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: xTitle,
        ...(options.logX ? { scale: { type: "log" as const } } : {}),
      },
      y: { field: "y", type: "quantitative", title: yTitle },
      color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom", labelLimit: 0 } },
    },
  };
  return render(spec);
}
