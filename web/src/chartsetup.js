// Chart.js with only the parts the dashboard uses (keeps the bundle small).
import {
  Chart,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  ScatterController,
  Tooltip,
} from 'chart.js'
import { tickCount, timeTicks } from './charts.js'
import { clock, num } from './format.js'

Chart.register(LineController, ScatterController, LineElement, PointElement, LinearScale, Tooltip, Legend, Filler)
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
Chart.defaults.color = '#1f2933'
Chart.defaults.animation = false

const reduced = typeof matchMedia !== 'undefined' && matchMedia('(prefers-reduced-motion: reduce)').matches

/** Options for a time (x, UTC) / value (y) chart, per the Chart.js performance guide. */
export function timeOptions({ yTitle, xTitle = 'time (UTC)', legend = true, digits = 2 }) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    animation: reduced ? false : false,
    layout: { padding: { left: 4, right: 8, top: 8 } },
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    plugins: {
      legend: { display: legend, position: 'bottom', labels: { boxWidth: 24, usePointStyle: false, filter: (item) => !item.text.startsWith('_') } },
      tooltip: {
        callbacks: {
          title: (items) => (items.length ? `${clock(items[0].parsed.x)} UTC` : ''),
          label: (item) => `${item.dataset.label}: ${num(item.parsed.y, digits)}`,
        },
      },
    },
    scales: {
      x: {
        type: 'linear',
        title: { display: true, text: xTitle },
        // A linear scale puts ticks at its ends and at round milliseconds (20:22:41, 20:56:40):
        // round UTC times instead, as many as the axis width holds.
        afterBuildTicks: (axis) => {
          const { values, label } = timeTicks(axis.min, axis.max, tickCount(axis.width))
          axis.ticks = values.map((value) => ({ value, text: label(value) }))
        },
        ticks: { maxRotation: 0, autoSkip: false, callback: (v, i, ticks) => ticks[i]?.text ?? clock(v) },
      },
      y: { type: 'linear', title: { display: true, text: yTitle }, ticks: { callback: (v) => num(v, digits) } },
    },
  }
}

export { Chart }
