// Load a view from the API, and load it again when live events arrive (at most ~1/s).
import { onMounted, ref, shallowRef, watch } from 'vue'
import { live, selected } from './api.js'

export function useView(load, deps = () => null) {
  const data = shallowRef(null)
  const error = ref(null)
  const status = ref(null)
  const loading = ref(false)
  async function refresh() {
    loading.value = true
    try {
      data.value = await load()
      error.value = null
      status.value = 200
    } catch (e) {
      error.value = e.message || String(e)
      status.value = e.status ?? null
    } finally {
      loading.value = false
    }
  }
  onMounted(refresh)
  watch(() => live.ticks, refresh)
  watch(() => selected.run, refresh)
  watch(deps, refresh)
  return { data, error, status, loading, refresh }
}
