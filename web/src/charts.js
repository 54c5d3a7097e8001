// Chart preparation: pure functions from API payloads to what Chart.js and D3 draw.
import { quantile } from 'd3-array'
import { clock, day, hhmm } from './format.js'

// Colour-blind-safe palette (Okabe–Ito) plus dash patterns, so lines differ by more than hue.
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#999999', '#8C6D00']
// The AI arms: colours of their own (purples, dark to light), and a thicker line.
export const AI_COLOUR = '#6A3D9A'
export const AI_COLOURS = [AI_COLOUR, '#A46FD8', '#3B1F5C']
export const AI_DASHES = [[14, 4], [4, 4], [14, 4, 2, 4]]
export const DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [], [6, 3], [2, 2], [8, 3, 2, 3], []]

/**
 * One Chart.js dataset per strategy; AI arms drawn thicker, each in its own purple and dash
 * (two arms, taker and maker, must not look alike). ``{x: ms, y}``, parsing off.
 */
export function equityDatasets(series) {
  let ai = 0
  return series.map((s, i) => {
    const k = s.family === 'ai' ? ai++ : -1
    const colour = k >= 0 ? AI_COLOURS[k % AI_COLOURS.length] : PALETTE[i % PALETTE.length]
    return {
      label: k >= 0 ? `${s.strategy} (AI)` : s.strategy,
      strategy: s.strategy,
      data: s.points.map((p) => ({ x: p.t, y: p.y })),
      borderColor: colour,
      backgroundColor: colour,
      borderDash: k >= 0 ? AI_DASHES[k % AI_DASHES.length] : DASHES[i % DASHES.length],
      borderWidth: k >= 0 ? 3 : 1.5,
      pointRadius: 0,
      tension: 0,
    }
  })
}

/** Append a live point to the matching dataset (kept in time order, capped at ``max``). */
export function appendPoint(datasets, strategy, point, max = 2000) {
  const ds = datasets.find((d) => d.strategy === strategy)
  if (!ds) return false
  const last = ds.data[ds.data.length - 1]
  if (last && point.x < last.x) return false
  if (last && point.x === last.x) ds.data[ds.data.length - 1] = point
  else ds.data.push(point)
  if (ds.data.length > max) ds.data.splice(0, ds.data.length - max)
  return true
}

/**
 * x/y bounds of all datasets, padded so lines do not touch the frame. x is exact unless a
 * dataset draws markers (fills): then it is padded too, so a marker at the first or last
 * instant is not drawn over the axis.
 */
export function bounds(datasets, pad = 0.05) {
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity
  for (const ds of datasets) {
    for (const p of ds.data) {
      if (p.x < xmin) xmin = p.x
      if (p.x > xmax) xmax = p.x
      if (p.y < ymin) ymin = p.y
      if (p.y > ymax) ymax = p.y
    }
  }
  if (xmin === Infinity) return null
  const span = ymax - ymin || Math.abs(ymax) * 0.001 || 1
  const marked = datasets.some((ds) => ds.type === 'scatter' && ds.data.length)
  const xpad = marked ? (xmax - xmin || 1000) * 0.02 : 0
  return { xmin: xmin - xpad, xmax: xmax + xpad, ymin: ymin - span * pad, ymax: ymax + span * pad }
}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
// Round steps a clock reads at a glance; each divides the next larger unit (multiples of a step
// counted from the epoch are then round UTC times).
const STEPS = [1, 2, 5, 10, 15, 30].map((k) => k * SECOND)
  .concat([1, 2, 3, 5, 10, 15, 30].map((k) => k * MINUTE), [1, 2, 3, 6, 12].map((k) => k * HOUR), [1, 2, 5, 10, 30].map((k) => k * DAY))

/**
 * Time-axis ticks from ``min`` to ``max`` (ms since the epoch): round UTC times evenly spaced,
 * the finest round step that gives at most ``most`` of them, and the label that step needs
 * ("14:03:30", "14:05", "2020-02-22"). Never the data's own ends (20:22:41, 23:59:53).
 */
export function timeTicks(min, max, most = 6) {
  if (!(max > min) || most < 1) return { values: [], label: clock }
  const step = STEPS.find((s) => Math.floor(max / s) - Math.ceil(min / s) + 1 <= most) ?? STEPS.at(-1)
  const values = []
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) values.push(t)
  const label = step % DAY === 0 ? day : step % MINUTE === 0 ? hhmm : clock
  return { values, label }
}

/** How many time labels fit ``px`` of axis ("14:03:30" is ~50 px; a gap between them). */
export function tickCount(px) {
  return Math.max(2, Math.min(8, Math.floor(px / 80)))
}

/** Fills as chart markers: buys ▲ below-to-up, sells ▼; shape tells the side, not colour. */
export function fillMarkers(fills) {
  const buys = [], sells = []
  for (const f of fills) {
    const p = { x: Math.floor(f.ts_ns / 1e6), y: f.price, qty: f.qty }
    ;(String(f.side).toLowerCase() === 'buy' ? buys : sells).push(p)
  }
  return { buys, sells }
}

/**
 * The forecast fan: for each horizon h (1..H s) the 10/50/90 % quantiles of the forecast
 * price paths of the last ``n`` forecasts, each rebased to the newest base price (what the
 * model has been saying lately, as a spread), plus the newest path itself.
 */
export function fanBands(predictions, n = 30) {
  const recent = predictions.filter((p) => p.path && p.path.length).slice(-n)
  if (!recent.length) return null
  const newest = recent[recent.length - 1]
  const base = newest.base_price
  const t0 = Math.floor(newest.ts_ns / 1e6)
  const H = newest.path.length
  const bands = []
  for (let h = 0; h < H; h++) {
    const vals = recent.filter((p) => p.path.length > h).map((p) => (base * p.path[h]) / p.base_price).sort((a, b) => a - b)
    bands.push({ t: t0 + (h + 1) * 1000, lo: quantile(vals, 0.1), mid: quantile(vals, 0.5), hi: quantile(vals, 0.9) })
  }
  return { t0, base, bands, path: newest.path.map((y, h) => ({ t: t0 + (h + 1) * 1000, y })) }
}

/** The price line under the fan: each forecast's base price (the last price) at its time. */
export function realisedSeries(predictions) {
  const out = []
  for (const p of predictions) out.push({ t: Math.floor(p.ts_ns / 1e6), y: p.base_price })
  out.sort((a, b) => a.t - b.t)
  return out
}

/**
 * What the forecast chart draws: the last ``historyMs`` of the price up to the newest forecast,
 * and the fan to its right, on a fixed time domain (a long or sparse history would otherwise
 * squeeze the 15 s fan into a few pixels at the right edge).
 */
export function fanWindow(predictions, historyMs = 90_000, n = 30) {
  const fan = fanBands(predictions, n)
  const all = realisedSeries(predictions)
  if (!fan) return all.length ? { fan: null, actual: all, domain: [all[0].t, all.at(-1).t] } : null
  const from = fan.t0 - historyMs
  const actual = all.filter((p) => p.t >= from && p.t <= fan.t0)
  return { fan, actual, domain: [from, fan.bands.at(-1).t] }
}

/** AI-vs-rival intervals ready to draw: finite ones only, with the side each falls on. */
export function intervalRows(intervals) {
  // Several AI arms (a taker and a maker): each row names its arm as well as the rival.
  const arms = new Set(intervals.map((i) => i.ai || ''))
  return intervals
    .filter((i) => Number.isFinite(i.ci_low_bp_day) && Number.isFinite(i.ci_high_bp_day) && Number.isFinite(i.mean_diff_bp_day))
    .map((i) => ({
      key: `${i.ai || ''}/${i.rival}`,
      rival: arms.size > 1 ? `${i.ai} − ${i.rival}` : i.rival,
      lo: i.ci_low_bp_day,
      hi: i.ci_high_bp_day,
      mean: i.mean_diff_bp_day,
      side: i.ci_low_bp_day > 0 ? 'ai' : i.ci_high_bp_day < 0 ? 'rival' : 'unclear',
    }))
}

/** A symmetric domain around zero that holds every interval. */
export function intervalDomain(rows) {
  let m = 0
  for (const r of rows) m = Math.max(m, Math.abs(r.lo), Math.abs(r.hi))
  return [-(m || 1) * 1.1, (m || 1) * 1.1]
}
