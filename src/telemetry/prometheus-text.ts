/**
 * The Prometheus text exposition of a process's metrics, written without the OpenTelemetry SDK
 * so that a process that exports nothing need not load it. The output is what the SDK's
 * PrometheusSerializer (prefix `devicemesh`, no timestamps, no scope labels, a target_info
 * series) prints for the same series: counters gain `_total`, names and label keys are
 * sanitised, a histogram prints `_count`, `_sum` and cumulative `_bucket`s, and a histogram
 * series nothing was observed into is left out as the SDK leaves it out.
 */

export type PrometheusLabels = Readonly<Record<string, string>>;

export interface ValuePoint {
  labels: PrometheusLabels;
  value: number;
}

export interface HistogramPoint {
  labels: PrometheusLabels;
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Cumulative counts per bound, one more for +Inf. */
  cumulative: readonly number[];
  count: number;
  sum: number;
}

export type MetricFamily =
  | { kind: 'counter' | 'gauge'; name: string; help: string; points: Iterable<ValuePoint> }
  | { kind: 'histogram'; name: string; help: string; points: Iterable<HistogramPoint> };

const PREFIX = 'devicemesh_';

function escapeText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function sanitizeName(name: string): string {
  return name.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
}

function valueText(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return `${v}`;
}

function line(name: string, labels: PrometheusLabels, value: number, le?: string): string {
  let text = '';
  for (const [key, v] of Object.entries(labels)) text += `${text ? ',' : ''}${sanitizeName(key)}="${escapeText(v).replace(/"/g, '\\"')}"`;
  if (le !== undefined) text += `${text ? ',' : ''}le="${le}"`;
  return `${name}${text ? `{${text}}` : ''} ${valueText(value)}\n`;
}

function histogramLines(name: string, p: HistogramPoint): string {
  let out = line(`${name}_count`, p.labels, p.count) + line(`${name}_sum`, p.labels, p.sum);
  p.cumulative.forEach((c, i) => {
    const bound = p.bounds[i];
    out += line(`${name}_bucket`, p.labels, c, bound === undefined ? '+Inf' : String(bound));
  });
  return out;
}

/** One family's block, or '' when it has nothing to print. */
function familyText(f: MetricFamily): string {
  const base = `${PREFIX}${sanitizeName(escapeText(f.name))}`;
  const name = f.kind === 'counter' && !base.endsWith('_total') ? `${base}_total` : base;
  let body = '';
  if (f.kind === 'histogram') {
    for (const p of f.points) if (p.count > 0) body += histogramLines(name, p);
    if (!body) return '';
  } else {
    for (const p of f.points) body += line(name, p.labels, p.value);
  }
  return `# HELP ${name} ${escapeText(f.help || 'description missing')}\n# TYPE ${name} ${f.kind}\n${body}`.trim() + '\n';
}

/** The whole exposition: target_info with the resource's attributes, then each family sorted by name. */
export function prometheusText(resource: PrometheusLabels, families: readonly MetricFamily[]): string {
  const target = `# HELP target_info Target metadata\n# TYPE target_info gauge\n${line('target_info', resource, 1)}`;
  const sorted = [...families].sort((a, b) => a.name.localeCompare(b.name));
  const body = sorted.map(familyText).join('');
  return target + (body || '# no registered metrics');
}
