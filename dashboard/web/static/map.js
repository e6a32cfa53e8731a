// The map: one marker per sensor, coloured by its latest intensity, clustered.
//
// Updates merge by time: a feature's position and values replace the sensor's only if its
// `observed_at` is not older, its classification only if its `classified_at` is not older. So
// the snapshot and the live stream may arrive in any order.

import { el, formatTime } from './panels.js';

const INTENSITIES = ['high', 'medium', 'low'];
const ICON_SIZE = 16;
const icons = Object.fromEntries([...INTENSITIES, 'none'].map((kind) => [kind,
  L.divIcon({ className: `sensor ${kind}`, iconSize: [ICON_SIZE, ICON_SIZE] })]));

const VALUES = [
  ['temperature', 'temperature', '°C'], ['humidity', 'humidity', '%'],
  ['wind_speed', 'wind speed', 'km/h'], ['wind_direction', 'wind direction', '°'],
  ['vegetation_density', 'vegetation density', ''], ['air_quality_index', 'air quality index', ''],
];
const KNOWN = new Set(['timestamp', 'latitude', 'longitude', 'source_name', ...VALUES.map((v) => v[0])]);

const kindOf = (sensor) => sensor.intensity ?? 'none';
const time = (iso) => (iso ? Date.parse(iso) : -Infinity);

function clusterIcon(cluster) {
  const kinds = new Set(cluster.getAllChildMarkers().map((m) => m.kind));
  const worst = INTENSITIES.find((k) => kinds.has(k)) ?? 'none';
  const count = cluster.getChildCount();
  const size = count < 100 ? 34 : count < 1000 ? 42 : 50;
  const label = document.createElement('span');
  label.textContent = String(count);
  return L.divIcon({ html: label, className: `cluster ${worst}`, iconSize: [size, size] });
}

/** The popup of `sensor`, built from elements and text only. */
function popup(sensor) {
  const r = sensor.reading ?? {};
  const rows = [
    ['position', `${sensor.lat.toFixed(4)}, ${sensor.lon.toFixed(4)}`],
    ['timestamp', r.timestamp ?? formatTime(sensor.observed_at)],
    ['intensity', el('span', `badge ${kindOf(sensor)}`, sensor.intensity ?? 'not classified yet')],
    ['confidence', sensor.confidence_score == null ? '—' : sensor.confidence_score.toFixed(2)],
    ...VALUES.map(([key, label, unit]) => [label, r[key] == null ? '—' : `${r[key]}${unit ? ` ${unit}` : ''}`]),
    ['rules fired', sensor.rules_fired?.length ? sensor.rules_fired.join(', ') : 'none'],
    ['classified reading', sensor.classified_at ? formatTime(sensor.classified_at) : '—'],
    ['agent', sensor.agent_id],
    ...Object.entries(r).filter(([k]) => !KNOWN.has(k)).map(([k, v]) => [k, JSON.stringify(v)]),
  ];
  const list = el('dl');
  for (const [term, value] of rows) list.append(el('dt', '', term), el('dd', '', value));
  return el('div', 'popup', el('h3', 'popup-name', sensor.source_name), list);
}

export class SensorMap {
  constructor(map, counts) {
    this.map = map;
    this.counts = counts;
    this.sensors = new Map();
    this.filter = { kinds: new Set([...INTENSITIES, 'none']), windowSeconds: 0, name: '' };
    this.cluster = L.markerClusterGroup({
      chunkedLoading: true, maxClusterRadius: 45, showCoverageOnHover: false,
      spiderfyOnMaxZoom: true, disableClusteringAtZoom: 16, iconCreateFunction: clusterIcon,
      // A mark when a bulk add has been drawn (the benchmark's "time to first render").
      chunkProgress: (done, total) => { if (total > 0 && done === total) performance.mark('emberline-rendered'); },
    });
    map.addLayer(this.cluster);
  }

  /** Applies GeoJSON features (snapshot or live); returns the sensors added. */
  apply(features) {
    const added = [];
    const [show, hide] = [[], []];
    for (const feature of features) {
      const sensor = this.merge(feature);
      if (!sensor) continue;
      if (!sensor.marker) added.push(this.createMarker(sensor)); else this.refresh(sensor);
      const visible = this.visible(sensor);
      if (visible && !sensor.shown) show.push(sensor.marker);
      if (!visible && sensor.shown) hide.push(sensor.marker);
      sensor.shown = visible;
    }
    if (hide.length) this.cluster.removeLayers(hide);
    if (show.length) this.cluster.addLayers(show);
    this.updateShown();
    return added;
  }

  /** Merges `feature` into its sensor; `undefined` when it brings nothing newer. */
  merge(feature) {
    const p = feature.properties;
    const [lon, lat] = feature.geometry.coordinates;
    let sensor = this.sensors.get(p.source_name);
    const fresh = !sensor;
    if (fresh) sensor = { source_name: p.source_name, observed_at: null, classified_at: null };
    // Ties on time go to the larger id, as in PostgreSQL (`COLLATE "C"`), whatever arrives last.
    const [at, held] = [time(p.observed_at), time(sensor.observed_at)];
    const newerReading = at > held || (at === held && !(p.reading_id < sensor.reading_id));
    const [classAt, classHeld] = [time(p.classified_at), time(sensor.classified_at)];
    const newerClass = p.classified_at != null && (classAt > classHeld ||
      (classAt === classHeld && !(p.classified_reading_id < sensor.classified_reading_id)));
    if (!newerReading && !newerClass) return undefined;
    const before = fresh ? null : kindOf(sensor);
    if (newerReading) {
      Object.assign(sensor, { lat, lon, observed_at: p.observed_at, reading_id: p.reading_id,
        agent_id: p.agent_id, reading: p.reading });
    }
    if (newerClass) {
      Object.assign(sensor, { intensity: p.intensity, confidence_score: p.confidence_score,
        rules_fired: p.rules_fired, rules_version: p.rules_version, classified_at: p.classified_at,
        classified_reading_id: p.classified_reading_id });
    }
    if (fresh) this.sensors.set(p.source_name, sensor);
    if (before !== kindOf(sensor)) this.counts.change(before, kindOf(sensor));
    return sensor;
  }

  createMarker(sensor) {
    const marker = L.marker([sensor.lat, sensor.lon], {
      icon: icons[kindOf(sensor)], title: sensor.source_name, alt: sensor.source_name, keyboard: false,
    });
    marker.kind = kindOf(sensor);
    marker.bindPopup(() => popup(sensor), { maxWidth: 320 });
    sensor.marker = marker;
    return sensor;
  }

  refresh(sensor) {
    const { marker } = sensor;
    const kind = kindOf(sensor);
    const moved = !marker.getLatLng().equals([sensor.lat, sensor.lon]);
    if (moved) marker.setLatLng([sensor.lat, sensor.lon]);
    if (marker.kind !== kind) {
      marker.kind = kind;
      marker.setIcon(icons[kind]);
      if (sensor.shown) this.cluster.refreshClusters(marker);
    }
    if (marker.isPopupOpen()) marker.setPopupContent(popup(sensor));
  }

  visible(sensor) {
    const { kinds, windowSeconds, name } = this.filter;
    if (!kinds.has(kindOf(sensor))) return false;
    if (windowSeconds > 0 && Date.now() - time(sensor.observed_at) > windowSeconds * 1000) return false;
    return !name || sensor.source_name.toLowerCase().includes(name);
  }

  setFilter(filter) {
    this.filter = { ...filter, name: filter.name.trim().toLowerCase() };
    const [show, hide] = [[], []];
    for (const sensor of this.sensors.values()) {
      const visible = this.visible(sensor);
      if (visible !== sensor.shown) (visible ? show : hide).push(sensor.marker);
      sensor.shown = visible;
    }
    if (hide.length) this.cluster.removeLayers(hide);
    if (show.length) this.cluster.addLayers(show);
    this.updateShown();
  }

  updateShown() {
    const shown = [...this.sensors.values()].filter((s) => s.shown).length;
    document.getElementById('shown').textContent = `${shown} of ${this.sensors.size} sensors shown`;
  }

  /** Fits the map to every sensor the filters show. */
  fitAll() {
    const points = [...this.sensors.values()].filter((s) => s.shown).map((s) => [s.lat, s.lon]);
    if (points.length) this.map.fitBounds(points, { padding: [30, 30], maxZoom: 10 });
  }

  /** Flies to a sensor (or a bare position) and opens its popup. */
  flyTo(name, lat, lon) {
    const sensor = this.sensors.get(name);
    const target = sensor ? [sensor.lat, sensor.lon] : [lat, lon];
    this.map.flyTo(target, Math.max(this.map.getZoom(), 12), { duration: 0.8 });
    if (!sensor?.shown) return;
    this.map.once('moveend', () => {
      this.cluster.zoomToShowLayer(sensor.marker, () => sensor.marker.openPopup());
    });
  }
}
