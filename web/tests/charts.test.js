import { describe, expect, it } from 'vitest'
import { appendPoint, bounds, equityDatasets, fanBands, fanWindow, fillMarkers, intervalDomain, intervalRows, tickCount, timeTicks } from '../src/charts.js'

const series = [
  { strategy: 'sma', family: 'classical', points: [{ t: 1, y: 100 }, { t: 2, y: 98 }] },
  { strategy: 'ai', family: 'ai', points: [{ t: 1, y: 100 }, { t: 2, y: 103 }] },
]

describe('equity chart preparation', () => {
  it('makes one dataset per strategy, AI marked and thicker, lines told apart by dashes', () => {
    const ds = equityDatasets(series)
    expect(ds.map((d) => d.label)).toEqual(['sma', 'ai (AI)'])
    expect(ds[1].borderWidth).toBeGreaterThan(ds[0].borderWidth)
    expect(ds[0].borderDash).not.toEqual(ds[1].borderDash)
    expect(ds[0].data).toEqual([{ x: 1, y: 100 }, { x: 2, y: 98 }])
  })
  it('gives each AI arm its own colour and dash (taker and maker must not look alike)', () => {
    const two = [...series, { strategy: 'ai_maker', family: 'ai', points: [{ t: 1, y: 100 }] }]
    const ds = equityDatasets(two)
    expect(ds[2].label).toBe('ai_maker (AI)')
    expect(ds[2].borderWidth).toBe(ds[1].borderWidth)
    expect(ds[2].borderColor).not.toBe(ds[1].borderColor)
    expect(ds[2].borderDash).not.toEqual(ds[1].borderDash)
  })
  it('appends live points in order, replaces a same-time point, caps the length', () => {
    const ds = equityDatasets(series)
    expect(appendPoint(ds, 'sma', { x: 3, y: 97 })).toBe(true)
    expect(appendPoint(ds, 'sma', { x: 3, y: 96 })).toBe(true)
    expect(ds[0].data.at(-1)).toEqual({ x: 3, y: 96 })
    expect(appendPoint(ds, 'sma', { x: 0, y: 1 })).toBe(false)
    expect(appendPoint(ds, 'nope', { x: 9, y: 1 })).toBe(false)
    appendPoint(ds, 'ai', { x: 4, y: 1 }, 2)
    expect(ds[1].data).toHaveLength(2)
  })
  it('pads the bounds', () => {
    const b = bounds(equityDatasets(series))
    expect(b.xmin).toBe(1)
    expect(b.xmax).toBe(2)
    expect(b.ymin).toBeLessThan(98)
    expect(b.ymax).toBeGreaterThan(103)
    expect(bounds([])).toBeNull()
  })
  it('pads x only when fill markers are drawn, so a marker at the edge clears the axis', () => {
    const line = { data: [{ x: 1000, y: 1 }, { x: 2000, y: 2 }] }
    const marks = { type: 'scatter', data: [{ x: 1000, y: 1 }] }
    const b = bounds([line, marks])
    expect(b.xmin).toBeLessThan(1000)
    expect(b.xmax).toBeGreaterThan(2000)
    expect(bounds([line, { type: 'scatter', data: [] }]).xmin).toBe(1000)
  })
})

describe('fills and forecasts', () => {
  it('splits fills into buy and sell markers', () => {
    const m = fillMarkers([
      { ts_ns: 2e9, price: 10, side: 'Buy', qty: 1 },
      { ts_ns: 3e9, price: 11, side: 'Sell', qty: 1 },
    ])
    expect(m.buys).toEqual([{ x: 2000, y: 10, qty: 1 }])
    expect(m.sells).toHaveLength(1)
  })
  it('builds the fan from recent paths rebased to the newest price', () => {
    const preds = [
      { ts_ns: 1e9, base_price: 100, path: [101, 102] },
      { ts_ns: 2e9, base_price: 200, path: [198, 196] },
    ]
    const fan = fanBands(preds)
    expect(fan.base).toBe(200)
    expect(fan.bands).toHaveLength(2)
    expect(fan.bands[0].t).toBe(3000)
    // rebased: 202 and 198 at 1 s ahead → median 200
    expect(fan.bands[0].mid).toBeCloseTo(200, 9)
    expect(fan.bands[0].lo).toBeLessThan(fan.bands[0].hi)
    expect(fan.path.at(-1)).toEqual({ t: 4000, y: 196 })
    expect(fanBands([])).toBeNull()
  })
})

describe('time axis ticks', () => {
  const at = (iso) => Date.parse(`${iso}Z`)
  it('puts ticks at round, evenly spaced UTC times, not at the data ends (20:22:41, 20:56:40…)', () => {
    // The equity chart of issue #23: 20:22:41 to 23:59:53.
    const { values, label } = timeTicks(at('2020-02-22T20:22:41'), at('2020-02-22T23:59:53'), 6)
    expect(values.map(label)).toEqual(['21:00', '22:00', '23:00'])
    // With room for more labels, a finer round step.
    const more = timeTicks(at('2020-02-22T20:22:41'), at('2020-02-22T23:59:53'), 8)
    expect(more.values.map(more.label)).toEqual(['20:30', '21:00', '21:30', '22:00', '22:30', '23:00', '23:30'])
  })
  it('never gives more ticks than asked, and labels by the step (seconds, minutes, days)', () => {
    for (const [a, b] of [['01:41:13', '01:49:07'], ['00:00:03', '23:59:53'], ['01:47:40', '01:49:22']]) {
      for (const most of [2, 3, 6, 8]) {
        const { values } = timeTicks(at(`2020-02-22T${a}`), at(`2020-02-22T${b}`), most)
        expect(values.length).toBeGreaterThan(0)
        expect(values.length).toBeLessThanOrEqual(most)
      }
    }
    const seconds = timeTicks(at('2020-02-22T01:47:40'), at('2020-02-22T01:49:22'), 7)
    expect(seconds.values.map(seconds.label)).toEqual(['01:47:45', '01:48:00', '01:48:15', '01:48:30', '01:48:45', '01:49:00', '01:49:15'])
    const days = timeTicks(at('2020-02-20T12:00:00'), at('2020-02-24T12:00:00'), 4)
    expect(days.values.map(days.label)).toEqual(['2020-02-21', '2020-02-22', '2020-02-23', '2020-02-24'])
    expect(timeTicks(5, 5, 6).values).toEqual([])
  })
  it('fits the number of labels to the axis width', () => {
    expect(tickCount(100)).toBe(2)
    expect(tickCount(250)).toBe(3)
    expect(tickCount(1000)).toBe(8)
  })
  it('keeps at least two labels on a phone-sized axis (one minute-step label alone said little)', () => {
    const { values, label } = timeTicks(at('2020-02-22T01:41:13'), at('2020-02-22T01:49:07'), 3)
    expect(values.map(label)).toEqual(['01:42', '01:45', '01:48'])
  })
})

describe('the forecast window', () => {
  // A forecast a second for 20 minutes: the whole history would leave the 15 s fan 1 % wide.
  const preds = Array.from({ length: 1200 }, (_, i) => ({
    ts_ns: (1_000_000 + i) * 1e9, base_price: 100 + (i % 7), path: Array.from({ length: 15 }, (_, h) => 100 + h),
  }))
  it('shows a fixed recent window of the price so the 15 s fan keeps a readable share', () => {
    const w = fanWindow(preds, 90_000)
    const newest = (1_000_000 + 1199) * 1000
    expect(w.domain).toEqual([newest - 90_000, newest + 15_000])
    expect(w.actual[0].t).toBeGreaterThanOrEqual(newest - 90_000)
    expect(w.actual.at(-1).t).toBe(newest)
    const share = (w.fan.bands.at(-1).t - w.fan.t0) / (w.domain[1] - w.domain[0])
    expect(share).toBeGreaterThan(0.1)
    expect(fanWindow(preds, 45_000).fan.bands).toHaveLength(15)
  })
  it('draws the price alone when no forecast has a path, and nothing without forecasts', () => {
    const flat = preds.slice(0, 3).map((p) => ({ ...p, path: [] }))
    const w = fanWindow(flat)
    expect(w.fan).toBeNull()
    expect(w.actual).toHaveLength(3)
    expect(fanWindow([])).toBeNull()
  })
})

describe('AI vs classical intervals', () => {
  it('keeps finite intervals and says which side each falls on', () => {
    const rows = intervalRows([
      { rival: 'a', mean_diff_bp_day: 1, ci_low_bp_day: 0.5, ci_high_bp_day: 2 },
      { rival: 'b', mean_diff_bp_day: -1, ci_low_bp_day: -3, ci_high_bp_day: -0.1 },
      { rival: 'c', mean_diff_bp_day: 0, ci_low_bp_day: -1, ci_high_bp_day: 1 },
      { rival: 'd', mean_diff_bp_day: null, ci_low_bp_day: null, ci_high_bp_day: null },
    ])
    expect(rows.map((r) => r.side)).toEqual(['ai', 'rival', 'unclear'])
    expect(intervalDomain(rows)).toEqual([-3.3000000000000003, 3.3000000000000003])
    expect(intervalDomain([])).toEqual([-1.1, 1.1])
  })
  it('names the AI arm of each row when there are several (a taker and a maker)', () => {
    const one = { mean_diff_bp_day: 1, ci_low_bp_day: 0.5, ci_high_bp_day: 2 }
    const rows = intervalRows([
      { ai: 'ai_taker', rival: 'sma', ...one },
      { ai: 'ai_maker', rival: 'sma', ...one },
    ])
    expect(rows.map((r) => r.rival)).toEqual(['ai_taker − sma', 'ai_maker − sma'])
    expect(new Set(rows.map((r) => r.key)).size).toBe(2)
    expect(intervalRows([{ ai: 'ai', rival: 'sma', ...one }])[0].rival).toBe('sma')
  })
})
