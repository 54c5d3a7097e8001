import { describe, expect, it } from 'vitest'
import { placeLabels, seasonMarkers } from '../src/markers.js'

describe('season event markers', () => {
  it('makes a labelled line per champion change and a ‖ per halt', () => {
    const m = seasonMarkers([
      { kind: 'halt', at_ms: 5, strategy: 'macd' },
      { kind: 'champion', at_ms: 9, version: '3' },
    ])
    expect(m).toEqual([
      { kind: 'halt', x: 5, label: '‖' },
      { kind: 'champion', x: 9, label: 'v3' },
    ])
    expect(seasonMarkers(undefined)).toEqual([])
  })
  it('stacks labels that would overlap and keeps them inside the plot', () => {
    const p = placeLabels([{ px: 100, width: 20 }, { px: 105, width: 20 }, { px: 300, width: 20 }, { px: 395, width: 20 }], 400)
    expect(p[0]).toEqual({ left: 103, row: 0 })
    expect(p[1].row).toBe(1) // two promotions minutes apart: both readable
    expect(p[2].row).toBe(0)
    expect(p[3].left + 20).toBeLessThanOrEqual(400) // flipped left of its line at the edge
  })
})
