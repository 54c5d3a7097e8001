// The dashboard API (same origin) and the live event stream.
import { reactive } from 'vue'

// The run every page shows: `?run=` in the URL (before the #/page part, so moving between
// pages keeps it); none means the latest run.
export const selected = reactive({ run: new URLSearchParams(location.search).get('run') || null })

export function selectRun(run) {
  const url = new URL(location.href)
  if (run) url.searchParams.set('run', run)
  else url.searchParams.delete('run')
  history.pushState(null, '', url)
  selected.run = run || null
}
window.addEventListener('popstate', () => {
  selected.run = new URLSearchParams(location.search).get('run') || null
})

export async function get(path, params = {}) {
  params = { run_id: selected.run, ...params }
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ''))
  const url = `/api${path}${qs.toString() ? `?${qs}` : ''}`
  const res = await fetch(url, { headers: { Accept: 'application/json' } })
  if (!res.ok) {
    let detail = res.statusText
    try {
      detail = (await res.json()).detail ?? detail
    } catch {
      /* not JSON */
    }
    const err = new Error(typeof detail === 'string' ? detail : JSON.stringify(detail))
    err.status = res.status
    throw err
  }
  return res.json()
}

export async function post(path, body) {
  const res = await fetch(`/api${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  })
  const data = await res.json().catch(() => ({}))
  return { ok: res.ok, status: res.status, data }
}

// Live state shared by every page: connection, counters pages watch, the newest fills.
export const live = reactive({
  connected: false,
  seq: 0,
  missed: 0,
  ticks: 0, // bumped (at most ~1/s) when anything changed: pages refetch their views
  fills: [],
  lastEvent: null,
})

const listeners = new Set()
export function onLive(fn) {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

let source = null
let tickTimer = null
let trailingTimer = null
// Pages refetch at most about once a second while events arrive, and once more a few seconds
// after the last one: the server recomputes whole-run figures in the background and answers
// with the previous ones meanwhile, so the trailing refetch picks up the final figures.
function bump() {
  clearTimeout(trailingTimer)
  trailingTimer = setTimeout(() => live.ticks++, 4000)
  if (tickTimer) return
  tickTimer = setTimeout(() => {
    tickTimer = null
    live.ticks++
  }, 800)
}

export function connect() {
  if (source || typeof EventSource === 'undefined') return
  source = new EventSource('/api/stream')
  source.addEventListener('open', () => (live.connected = true))
  source.addEventListener('error', () => (live.connected = false))
  source.addEventListener('hello', (e) => {
    live.connected = true
    live.seq = JSON.parse(e.data).seq
  })
  for (const name of ['fill', 'equity', 'forecast', 'risk', 'run', 'kill']) {
    source.addEventListener(name, (e) => {
      const id = Number(e.lastEventId)
      if (live.seq && id > live.seq + 1) live.missed += id - live.seq - 1
      live.seq = id
      const data = JSON.parse(e.data)
      live.lastEvent = { name, at: Date.now() }
      if (name === 'fill') {
        live.fills.unshift(data)
        if (live.fills.length > 50) live.fills.length = 50
      }
      for (const fn of listeners) fn(name, data)
      bump()
    })
  }
}
