import { describe, expect, it } from 'vitest'
import { bps, btc, clock, direction, duration, money, num, pct, side, signed, stamp, usdt } from '../src/format.js'

describe('numbers carry units and signs', () => {
  it('groups and rounds', () => {
    expect(num(12345.678)).toBe('12,345.68')
    expect(num(-0.5, 1)).toBe('−0.5')
    expect(num(null)).toBe('—')
    expect(num(NaN)).toBe('—')
  })
  it('gives gains a plus and losses a true minus, and zero no sign', () => {
    expect(signed(7.821)).toBe('+7.82')
    expect(signed(-4)).toBe('−4.00')
    expect(signed(0)).toBe('0.00')
    expect(signed(-0.001)).toBe('0.00')
  })
  it('tells gains from losses by arrow and words, not only colour', () => {
    expect(money(7.82)).toMatchObject({ text: '+7.82 USDT', dir: 'gain', arrow: '▲' })
    expect(money(-3)).toMatchObject({ text: '−3.00 USDT', dir: 'loss', arrow: '▼', label: 'loss of 3.00 USDT' })
    expect(money(0.001).dir).toBe('flat')
    expect(direction(undefined)).toBe('flat')
  })
  it('puts units on every figure', () => {
    expect(pct(0.0782, 3, { sign: true })).toBe('+0.078 %')
    expect(bps(-1.234)).toBe('−1.23 bps')
    expect(usdt(10000)).toBe('10,000.00 USDT')
    expect(btc(-0.5)).toBe('−0.500 BTC')
    expect(duration(0.25)).toBe('250 ms')
    expect(duration(75)).toBe('1 min')
    expect(duration(7200)).toBe('2.0 h')
  })
  it('shows times in UTC', () => {
    expect(clock(1582340404599)).toBe('03:00:04')
    expect(stamp(1582340404599)).toBe('2020-02-22 03:00:04 UTC')
  })
  it('marks the side of a fill with a shape', () => {
    expect(side('Buy')).toEqual({ text: 'Buy ▲', dir: 'gain' })
    expect(side('Sell').text).toBe('Sell ▼')
  })
})
