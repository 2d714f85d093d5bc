import uPlot from 'uplot';
import type { BindingOverview, HostOverview, MeshOverview, ProxyOverview } from '../../src/admin/mesh-overview';

/** How many points (one per server push, about a second apart) a chart keeps. */
const WINDOW = 120;

interface Chart {
  plot: uPlot;
  times: number[];
  bytes: number[];
  element: HTMLElement;
}

const charts = new Map<string, Chart>();

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', attributes: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  return e;
}

function badge(state: string, attributes: Record<string, string> = {}): HTMLSpanElement {
  return element('span', state, { class: 'badge', 'data-state': state, ...attributes });
}

function rate(bytesPerSecond: number): string {
  if (bytesPerSecond < 1000) return `${Math.round(bytesPerSecond)} B/s`;
  if (bytesPerSecond < 1e6) return `${(bytesPerSecond / 1000).toFixed(1)} kB/s`;
  return `${(bytesPerSecond / 1e6).toFixed(2)} MB/s`;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

function renderHosts(hosts: readonly HostOverview[]): void {
  const root = byId('hosts');
  root.replaceChildren();
  if (hosts.length === 0) root.append(element('p', 'no hosts registered', { class: 'empty' }));
  for (const h of hosts) {
    const box = element('div', '', { class: 'host', 'data-host': h.id });
    box.append(element('strong', h.id), ' ', badge(h.state), ` ${h.socketPlane}`);
    const list = element('ul');
    for (const d of h.devices) {
      const item = element('li', '', { 'data-device': d.path, 'data-state': d.state });
      item.append(badge(d.state), ` ${d.path} (${d.kind.toLowerCase()}) `, element('code', d.id));
      list.append(item);
    }
    box.append(list);
    root.append(box);
  }
}

function renderBindings(bindings: readonly BindingOverview[]): void {
  const body = byId<HTMLTableElement>('bindings').tBodies[0] as HTMLTableSectionElement;
  body.replaceChildren();
  for (const b of bindings) {
    const m = b.mapping;
    const own = m && m.policy.bytesPerSecond > 0 ? rate(m.policy.bytesPerSecond) : 'unlimited';
    const limit = !m ? '' : m.adaptiveLimit > 0 ? `${rate(m.adaptiveLimit)} (adaptive)` : own;
    const row = element('tr', '', { 'data-binding': b.name });
    const phase = element('td');
    phase.append(badge(b.phase, { title: b.message }));
    row.append(
      element('td', b.name),
      element('td', b.workload),
      element('td', b.device),
      element('td', b.virtual),
      phase,
      element('td', m ? `${m.id} v${m.version}` : '—'),
      element('td', m?.policy.sharing ?? ''),
      element('td', limit),
      element('td', b.rates ? rate(b.rates.bytesPerSecond) : '—'),
    );
    body.append(row);
  }
}

function renderProxies(proxies: readonly ProxyOverview[]): void {
  const body = byId<HTMLTableElement>('proxies').tBodies[0] as HTMLTableSectionElement;
  body.replaceChildren();
  for (const p of proxies) {
    for (const t of p.types.length > 0 ? p.types : [{ type: '', sent: '', acked: '', state: 'NOT SENT', nack: '' }]) {
      const state = element('td');
      state.append(badge(t.state));
      const row = element('tr', '', { 'data-proxy': p.name });
      row.append(element('td', p.name), element('td', t.type), element('td', t.sent), element('td', t.acked), state, element('td', t.nack));
      body.append(row);
    }
  }
}

function renderAdaptation(overview: MeshOverview): void {
  const list = byId('adaptation');
  list.replaceChildren();
  if (overview.adaptation.length === 0) list.append(element('li', 'no adaptive limit changes yet', { class: 'empty' }));
  for (const e of [...overview.adaptation].reverse()) {
    const from = e.from > 0 ? rate(e.from) : 'none';
    const to = e.to > 0 ? rate(e.to) : 'none';
    list.append(element('li', `${new Date(e.at).toLocaleTimeString()} ${e.binding} on ${e.device}: ${from} → ${to} (${e.reason})`));
  }
}

/** One uPlot chart per binding with a mapping: bytes/s over the last WINDOW pushes. */
function updateCharts(overview: MeshOverview): void {
  const root = byId('charts');
  const now = overview.generatedAt / 1000;
  const seen = new Set<string>();
  for (const b of overview.bindings) {
    if (!b.mapping) continue;
    seen.add(b.name);
    let chart = charts.get(b.name);
    if (!chart) {
      const box = element('div', '', { class: 'chart', 'data-chart': b.name });
      box.append(element('h3', b.name));
      root.append(box);
      const plot = new uPlot(
        {
          width: 420,
          height: 160,
          series: [{}, { label: 'bytes/s', stroke: '#2f6fde', fill: 'rgba(47, 111, 222, 0.15)', value: (_u, v) => (v === null ? '—' : rate(v)) }],
          axes: [{}, { values: (_u, ticks) => ticks.map(rate), size: 70 }],
          scales: { x: { time: true } },
        },
        [[], []],
        box,
      );
      chart = { plot, times: [], bytes: [], element: box };
      charts.set(b.name, chart);
    }
    chart.times.push(now);
    chart.bytes.push(b.rates?.bytesPerSecond ?? 0);
    if (chart.times.length > WINDOW) {
      chart.times.shift();
      chart.bytes.shift();
    }
    chart.plot.setData([chart.times, chart.bytes]);
    // What the chart shows now, for people using the inspector and for the browser test.
    chart.element.dataset.points = String(chart.times.length);
    chart.element.dataset.last = String(chart.bytes[chart.bytes.length - 1] ?? 0);
  }
  for (const [name, chart] of charts) {
    if (seen.has(name)) continue;
    chart.plot.destroy();
    chart.element.remove();
    charts.delete(name);
  }
  if (charts.size === 0 && root.childElementCount === 0) root.append(element('p', 'no mapped bindings', { class: 'empty' }));
  else root.querySelector('.empty')?.remove();
}

function render(overview: MeshOverview): void {
  byId('version').textContent = `state version ${overview.version}`;
  renderHosts(overview.hosts);
  renderBindings(overview.bindings);
  renderProxies(overview.proxies);
  renderAdaptation(overview);
  updateCharts(overview);
}

function connect(): void {
  const status = byId('connection');
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => {
    status.textContent = 'live';
    status.dataset.state = 'live';
  });
  events.addEventListener('error', () => {
    // EventSource reconnects by itself; the badge says the page is not current meanwhile.
    status.textContent = 'reconnecting';
    status.dataset.state = 'lost';
  });
  events.addEventListener('overview', (e) => render(JSON.parse((e as MessageEvent<string>).data) as MeshOverview));
}

connect();
