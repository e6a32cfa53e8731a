// Emberline dashboard: boot, snapshot, live stream, filters.
//
// Order of events: subscribe to /api/stream first, load /api/sensors once the stream says
// `ready`, and merge both by time (map.js), so nothing published while the snapshot loads is
// lost. A reconnected or lagging stream reloads the snapshot.

import { SensorMap } from './map.js';
import { Alerts, Counts, renderAgents } from './panels.js';

const AGENTS_EVERY_MS = 10_000;

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function createMap(config) {
  // maxZoom on the map itself: clustering needs it even without a tile layer.
  const map = L.map('map', { worldCopyJump: true, minZoom: 1, maxZoom: 18 }).setView([20, 0], 2);
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(map);
  }
  return map;
}

function readFilter() {
  const kinds = new Set([...document.querySelectorAll('input[name=intensity]:checked')].map((i) => i.value));
  return {
    kinds,
    windowSeconds: Number(document.getElementById('window').value),
    name: document.getElementById('sensor-filter').value,
  };
}

function wireFilters(sensors) {
  const apply = () => sensors.setFilter(readFilter());
  for (const input of document.querySelectorAll('#filters input, #filters select')) {
    input.addEventListener(input.type === 'search' ? 'input' : 'change', apply);
  }
  document.getElementById('fit-all').addEventListener('click', () => sensors.fitAll());
  // The time window moves with the clock.
  setInterval(() => { if (readFilter().windowSeconds > 0) apply(); }, 30_000);
}

function alertOf(feature) {
  const p = feature.properties;
  const [longitude, latitude] = feature.geometry.coordinates;
  return { reading_id: p.reading_id, source_name: p.source_name, observed_at: p.classified_at,
    confidence_score: p.confidence_score, rules_fired: p.rules_fired, latitude, longitude };
}

async function loadSnapshot(sensors, alerts, first) {
  const [collection, latest] = await Promise.all([getJson('/api/sensors'), getJson('/api/alerts?limit=20')]);
  sensors.apply(collection.features);
  alerts.replace(latest);
  if (first) {
    sensors.fitAll();
    performance.mark('emberline-loaded');
  }
  document.body.dataset.loaded = 'true';
}

async function refreshAgents() {
  try {
    const agents = await getJson('/api/agents');
    renderAgents(document.getElementById('agents'), document.getElementById('no-agents'), agents);
  } catch (error) {
    console.warn('agents:', error.message);
  }
}

function follow(sensors, alerts) {
  const status = document.getElementById('live');
  const stream = new EventSource('/api/stream');
  let loaded = false;
  const reload = () => loadSnapshot(sensors, alerts, !loaded)
    .then(() => { loaded = true; })
    .catch((error) => console.warn('snapshot:', error.message));
  stream.addEventListener('ready', () => {
    status.className = 'live on';
    status.textContent = 'live';
    reload();
  });
  stream.addEventListener('resync', reload);
  stream.addEventListener('classification', (event) => {
    const feature = JSON.parse(event.data);
    sensors.apply([feature]);
    if (feature.properties.intensity === 'high') alerts.add(alertOf(feature));
  });
  stream.addEventListener('error', () => {
    status.className = 'live off';
    status.textContent = 'reconnecting…';
  });
}

async function main() {
  const config = await getJson('/config.json');
  const map = createMap(config);
  const counts = new Counts();
  const sensors = new SensorMap(map, counts);
  const alerts = new Alerts(document.getElementById('alerts'), document.getElementById('no-alerts'),
    (alert) => sensors.flyTo(alert.source_name, alert.latitude, alert.longitude));
  wireFilters(sensors);
  follow(sensors, alerts);
  refreshAgents();
  setInterval(refreshAgents, AGENTS_EVERY_MS);
}

main().catch((error) => console.error('dashboard failed to start:', error?.stack ?? String(error)));
