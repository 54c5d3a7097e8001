// The pixel width of an element, kept up to date (SVG charts draw at their real size, so
// their text stays readable on a phone and on a wide screen).
import { onBeforeUnmount, onMounted, ref } from 'vue'

export function useWidth(el, fallback = 640, min = 280, max = 1100) {
  const width = ref(fallback)
  let ro = null
  const clamp = (w) => Math.max(min, Math.min(max, Math.floor(w)))
  onMounted(() => {
    if (!el.value) return
    width.value = clamp(el.value.clientWidth || fallback)
    if (typeof ResizeObserver !== 'undefined') {
      ro = new ResizeObserver((entries) => {
        const w = clamp(entries[0].contentRect.width)
        if (w && w !== width.value) width.value = w
      })
      ro.observe(el.value)
    }
  })
  onBeforeUnmount(() => ro?.disconnect())
  return width
}
