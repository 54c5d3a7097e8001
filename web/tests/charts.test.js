import { describe, expect, it } from 'vitest'
import { appendPoint, bounds, equityDatasets, fanBands, fillMarkers, intervalDomain, intervalRows } from '../src/charts.js'

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
