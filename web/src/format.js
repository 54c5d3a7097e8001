// Number and time formatting for the dashboard: every number carries its unit, and gains and
// losses differ by sign and an arrow (▲ ▼), not only by colour.

const MINUS = '\u2212'

export function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v)
}

/** Grouped fixed-point number ("12,345.67"), "—" when missing; negative with a true minus. */
export function num(v, digits = 2) {
  if (!isNum(v)) return '—'
  const s = Math.abs(v).toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  })
  return (v < 0 && s.replace(/[0.,]/g, '') !== '' ? MINUS : '') + s
}

/** Signed value: "+12.30", "−4.00", "0.00" (zero has no sign). */
export function signed(v, digits = 2) {
  if (!isNum(v)) return '—'
  const body = num(Math.abs(v), digits)
  if (body.replace(/[0.,]/g, '') === '') return body
  return (v > 0 ? '+' : MINUS) + body
}

/** Direction of a value for styling and the arrow: "gain", "loss" or "flat". */
export function direction(v, digits = 2) {
  if (!isNum(v)) return 'flat'
  const rounded = Number(v.toFixed(digits))
  return rounded > 0 ? 'gain' : rounded < 0 ? 'loss' : 'flat'
}

const ARROWS = { gain: '▲', loss: '▼', flat: '•' }

/** A P&L-like figure: { text, dir, arrow, label } with the unit, e.g. "+7.82 USDT". */
export function money(v, unit = 'USDT', digits = 2) {
  const dir = direction(v, digits)
  const text = isNum(v) ? `${signed(v, digits)} ${unit}` : '—'
  const word = dir === 'gain' ? 'gain' : dir === 'loss' ? 'loss' : 'no change'
  return { text, dir, arrow: ARROWS[dir], label: isNum(v) ? `${word} of ${num(Math.abs(v), digits)} ${unit}` : 'no data' }
}

export function pct(v, digits = 2, { sign = false } = {}) {
  if (!isNum(v)) return '—'
  return `${sign ? signed(v, digits) : num(v, digits)} %`
}

export function bps(v, digits = 2) {
  return isNum(v) ? `${signed(v, digits)} bps` : '—'
}

export function usdt(v, digits = 2) {
  return isNum(v) ? `${num(v, digits)} USDT` : '—'
}

export function btc(v, digits = 3) {
  return isNum(v) ? `${signed(v, digits)} BTC` : '—'
}

export function ratio(v, digits = 2) {
  return isNum(v) ? num(v, digits) : '—'
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0')
}

/** UTC time of day from ms since the epoch: "14:03:07". */
export function clock(ms) {
  if (!isNum(ms)) return '—'
  const d = new Date(ms)
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
}

/** UTC hour and minute: "14:03". */
export function hhmm(ms) {
  return isNum(ms) ? clock(ms).slice(0, 5) : '—'
}

/** UTC date: "2020-02-22". */
export function day(ms) {
  if (!isNum(ms)) return '—'
  const d = new Date(ms)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

/** Date and UTC time: "2020-02-22 03:00:04 UTC". */
export function stamp(ms) {
  if (!isNum(ms)) return '—'
  return `${day(ms)} ${clock(ms)} UTC`
}

export function nsToMs(ns) {
  return isNum(ns) ? Math.floor(ns / 1e6) : null
}

/** A duration in seconds, human sized: "850 ms", "12.3 s", "4 min", "3.2 h", "2.0 d". */
export function duration(s) {
  if (!isNum(s)) return '—'
  const a = Math.abs(s)
  if (a < 1) return `${Math.round(s * 1000)} ms`
  if (a < 60) return `${s.toFixed(1)} s`
  if (a < 3600) return `${Math.round(s / 60)} min`
  if (a < 86400) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}

export function side(s) {
  const buy = String(s).toLowerCase() === 'buy'
  return { text: buy ? 'Buy ▲' : 'Sell ▼', dir: buy ? 'gain' : 'loss' }
}
