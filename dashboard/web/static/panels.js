// Side panels: counts per intensity, latest high alerts, agent health. Every value from a
// reading or a heartbeat goes into the page as text (textContent), never as markup.

/** Creates `tag` with `className` and children (strings become text nodes). */
export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatTime(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso) : at.toISOString().replace('.000Z', 'Z');
}

export function formatAge(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** Sensors per latest intensity, shown in the header. */
export class Counts {
  constructor() {
    this.values = { high: 0, medium: 0, low: 0, none: 0, total: 0 };
    this.scheduled = false;
  }
  change(from, to) {
    if (from) this.values[from] -= 1; else this.values.total += 1;
    this.values[to] += 1;
    this.render();
  }
  render() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const [key, value] of Object.entries(this.values)) {
        const node = document.querySelector(`[data-count="${key}"]`);
        if (node) node.textContent = String(value);
      }
    });
  }
}

/** The latest high alerts, newest first; clicking one flies the map there. */
export class Alerts {
  constructor(list, empty, onPick, max = 20) {
    Object.assign(this, { list, empty, onPick, max, items: [] });
  }
  /** Merges a snapshot in: it comes from PostgreSQL, which can lag the live stream, so live
   * alerts it does not hold yet stay; the newest `max` are shown. */
  replace(alerts) {
    const byId = new Map(this.items.map((a) => [a.reading_id, a]));
    for (const alert of alerts) byId.set(alert.reading_id, alert);
    this.items = [...byId.values()]
      .sort((a, b) => Date.parse(b.observed_at) - Date.parse(a.observed_at))
      .slice(0, this.max);
    this.render();
  }
  add(alert) {
    if (this.items.some((a) => a.reading_id === alert.reading_id)) return;
    this.items.unshift(alert);
    this.items.sort((a, b) => Date.parse(b.observed_at) - Date.parse(a.observed_at));
    this.items.length = Math.min(this.items.length, this.max);
    this.render();
  }
  render() {
    const rows = this.items.map((alert) => {
      const confidence = Number(alert.confidence_score).toFixed(2);
      const meta = `${formatTime(alert.observed_at)} · confidence ${confidence}`;
      const row = el('li', 'alert', el('span', 'alert-name', alert.source_name), el('span', 'alert-meta', meta));
      row.tabIndex = 0;
      const pick = () => this.onPick(alert);
      row.addEventListener('click', pick);
      row.addEventListener('keydown', (event) => { if (event.key === 'Enter') pick(); });
      return row;
    });
    this.list.replaceChildren(...rows);
    this.empty.hidden = rows.length > 0;
  }
}

/** The agent health table; a stale agent's row stands out. */
export function renderAgents(table, empty, agents) {
  const rows = agents.map((agent) => {
    const oldest = agent.oldest_buffered_age_seconds;
    const row = el('tr', agent.stale ? 'agent stale' : 'agent',
      el('td', '', agent.agent_id),
      el('td', '', `${formatAge(agent.last_seen_seconds_ago)} ago`),
      el('td', '', String(agent.buffer_depth)),
      el('td', '', oldest == null ? '—' : formatAge(oldest)));
    row.title = `version ${agent.version}, last heartbeat ${formatTime(agent.last_seen_at)}` +
      (agent.stale ? ' — stale' : '');
    return row;
  });
  table.tBodies[0].replaceChildren(...rows);
  empty.hidden = rows.length > 0;
}
