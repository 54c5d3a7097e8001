// Events on a time chart's x axis: model version changes as labelled vertical lines, halts as
// ‖ marks along the bottom (the glyph the tables use for a halt; shape, not only colour, tells
// them apart). A Chart.js plugin reads the markers from ``chart.$markers`` (set by TimeChart's
// optional ``markers`` prop), so the options resolver never touches them.

export const CHAMPION_COLOUR = '#1f2933'
export const HALT_COLOUR = '#b42318'
const LABEL_FONT = 'bold 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
const HALT_FONT = 'bold 15px "DejaVu Sans", system-ui, sans-serif'
const ROW = 15 // px between stacked labels

/** Season events (``/api/seasons/{name}`` ``events.events``) as chart markers. */
export function seasonMarkers(events) {
  return (events ?? []).map((e) =>
    e.kind === 'champion'
      ? { kind: 'champion', x: e.at_ms, label: `v${e.version}` }
      : { kind: 'halt', x: e.at_ms, label: '‖' },
  )
}

/**
 * Where each label goes: right of its line, or left when it would leave the plot, on the first
 * row free of earlier labels (two promotions minutes apart on a 30-day axis must both be read).
 * ``items``: ``{px, width}`` in drawing order; returns ``{left, row}`` for each.
 */
export function placeLabels(items, right, gap = 3) {
  const rows = []
  return items.map(({ px, width }) => {
    let left = px + gap
    if (left + width > right) left = px - gap - width
    let row = 0
    while ((rows[row] ?? []).some(([a, b]) => left < b + gap && left + width > a - gap)) row++
    ;(rows[row] ??= []).push([left, left + width])
    return { left, row }
  })
}

export const markerPlugin = {
  id: 'eventMarkers',
  afterDatasetsDraw(chart) {
    const markers = chart.$markers
    if (!markers?.length) return
    const { ctx, chartArea: area, scales } = chart
    const inside = markers
      .map((m) => ({ ...m, px: scales.x.getPixelForValue(m.x) }))
      .filter((m) => m.px >= area.left - 0.5 && m.px <= area.right + 0.5)
    ctx.save()
    ctx.textBaseline = 'top'
    ctx.font = HALT_FONT
    ctx.textAlign = 'center'
    ctx.fillStyle = HALT_COLOUR
    for (const m of inside) if (m.kind === 'halt') ctx.fillText('‖', m.px, area.bottom - 18)
    const lines = inside.filter((m) => m.kind === 'champion')
    ctx.strokeStyle = CHAMPION_COLOUR
    ctx.lineWidth = 1.5
    ctx.setLineDash([5, 3])
    for (const m of lines) {
      ctx.beginPath()
      ctx.moveTo(m.px, area.top)
      ctx.lineTo(m.px, area.bottom)
      ctx.stroke()
    }
    ctx.setLineDash([])
    ctx.font = LABEL_FONT
    ctx.textAlign = 'left'
    const places = placeLabels(lines.map((m) => ({ px: m.px, width: ctx.measureText(m.label).width + 6 })), area.right)
    lines.forEach((m, i) => {
      const { left, row } = places[i]
      const top = area.top + 2 + row * ROW
      const width = ctx.measureText(m.label).width + 6
      ctx.fillStyle = 'rgba(255, 255, 255, 0.9)'
      ctx.fillRect(left, top - 1, width, ROW - 1)
      ctx.fillStyle = CHAMPION_COLOUR
      ctx.fillText(m.label, left + 3, top)
    })
    ctx.restore()
  },
}
