/**
 * Counters and gauges of one process, keyed by name and labels, rendered for the admin's
 * `/stats` (Envoy's flat text) and `/stats/prometheus`. Cheap enough for the data path: an
 * increment is one Map lookup on a key the caller builds once.
 */
export type Labels = Readonly<Record<string, string>>;

interface Series {
  name: string;
  labels: Labels;
  value: number;
}

/** A counter bound once to its labels, for the data path: `add` is a field increment. */
export interface Counter {
  add(delta: number): void;
}

export class Stats {
  private readonly counters = new Map<string, Series>();
  private readonly gauges = new Map<string, Series>();
  private readonly help: ReadonlyMap<string, string>;

  /** @param help each metric's help text, shown by /stats/prometheus. */
  constructor(help: Readonly<Record<string, string>> = {}) {
    this.help = new Map(Object.entries(help));
  }

  counter(name: string, labels: Labels = {}): Counter {
    const s = this.series(this.counters, name, labels);
    return {
      add: (delta: number): void => {
        s.value += delta;
      },
    };
  }

  add(name: string, delta: number, labels: Labels = {}): void {
    const s = this.series(this.counters, name, labels);
    s.value += delta;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.series(this.gauges, name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    const key = seriesKey(name, labels);
    return this.counters.get(key)?.value ?? this.gauges.get(key)?.value ?? 0;
  }

  /** `name{a=b}: value` lines, sorted, as Envoy's /stats prints them. */
  renderText(): string {
    const lines: string[] = [];
    for (const s of [...this.counters.values(), ...this.gauges.values()]) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',');
      lines.push(`${s.name}${labels ? `{${labels}}` : ''}: ${s.value}`);
    }
    return lines.sort().join('\n') + '\n';
  }

  renderPrometheus(): string {
    const out: string[] = [];
    const emit = (map: Map<string, Series>, type: string, suffix: string): void => {
      const byName = new Map<string, Series[]>();
      for (const s of map.values()) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
      for (const [name, series] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        const metric = `devicemesh_${name}${suffix}`;
        const help = this.help.get(name);
        if (help) out.push(`# HELP ${metric} ${help}`);
        out.push(`# TYPE ${metric} ${type}`);
        for (const s of series) {
          const labels = Object.entries(s.labels)
            .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
            .join(',');
          out.push(`${metric}${labels ? `{${labels}}` : ''} ${s.value}`);
        }
      }
    };
    emit(this.counters, 'counter', '_total');
    emit(this.gauges, 'gauge', '');
    return out.join('\n') + '\n';
  }

  private series(map: Map<string, Series>, name: string, labels: Labels): Series {
    const key = seriesKey(name, labels);
    let s = map.get(key);
    if (!s) {
      s = { name, labels: { ...labels }, value: 0 };
      map.set(key, s);
    }
    return s;
  }
}

function seriesKey(name: string, labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return name;
  return `${name}|${keys.sort().map((k) => `${k}=${labels[k]}`).join('|')}`;
}
