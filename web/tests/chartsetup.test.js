import { describe, expect, it } from 'vitest'
import { timeOptions } from '../src/chartsetup.js'

describe('the Chart.js time axis', () => {
  it('replaces the linear scale ticks with round UTC times and labels them (issue #23)', () => {
    const x = timeOptions({ yTitle: 'equity (USDT)' }).scales.x
    // What Chart.js hands the hook: the axis with its bounds (the data's ends) and its width.
    const axis = { min: Date.parse('2020-02-22T20:22:41Z'), max: Date.parse('2020-02-22T23:59:53Z'), width: 900, ticks: [] }
    x.afterBuildTicks(axis)
    const labels = axis.ticks.map((t, i) => x.ticks.callback(t.value, i, axis.ticks))
    expect(labels).toEqual(['20:30', '21:00', '21:30', '22:00', '22:30', '23:00', '23:30'])
    expect(x.ticks.autoSkip).toBe(false) // Chart.js must not thin them unevenly
  })
})
