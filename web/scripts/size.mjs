// The built JavaScript's size, gzipped (the budget is 250 KB): printed and written to
// src/dashboard/static/size.json; the build fails over budget.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const BUDGET = 250 * 1024
const dir = new URL('../../src/dashboard/static/', import.meta.url).pathname
const assets = join(dir, 'assets')
let raw = 0
let gz = 0
const files = {}
for (const name of readdirSync(assets)) {
  if (!name.endsWith('.js')) continue
  const data = readFileSync(join(assets, name))
  const z = gzipSync(data, { level: 9 }).length
  files[name] = { bytes: data.length, gzip: z }
  raw += data.length
  gz += z
}
writeFileSync(join(dir, 'size.json'), JSON.stringify({ js_bytes: raw, js_gzip_bytes: gz, budget: BUDGET, files }, null, 2))
// The budget is on the gzipped size (what a browser downloads): say so next to that number.
console.log(`built JS: ${(gz / 1024).toFixed(1)} KB gzipped of ${BUDGET / 1024} KB budget (${(raw / 1024).toFixed(1)} KB before gzip)`)
if (gz > BUDGET) {
  console.error('error: the built JavaScript is over the 250 KB gzipped budget')
  process.exit(1)
}
